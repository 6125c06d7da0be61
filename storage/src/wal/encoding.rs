//! Record payload encoding and the frame that carries it. The byte layouts are specified in
//! `storage/FORMAT-wal.md`; this file must stay in step with that document.

use edgeprom_model::Labels;

use super::{ChunkRecord, Record, SampleRecord, SeriesRecord};

/// Frame header: type (1) + payload length (4, LE) + CRC32C (4, LE).
pub(crate) const HEADER_LEN: usize = 9;

pub(crate) const TYPE_SERIES: u8 = 1;
pub(crate) const TYPE_SAMPLES: u8 = 2;
pub(crate) const TYPE_TOMBSTONES: u8 = 3;
pub(crate) const TYPE_CHUNKS: u8 = 4;
/// Set in the type byte of every frame of a commit except its last, so that replay and repair can
/// treat a commit as all-or-nothing even though each record has its own frame.
pub(crate) const FLAG_MORE: u8 = 0x80;

/// Smallest possible encoded entry of each record kind; bounds the entry count a payload may claim
/// so that a corrupt count can never make the decoder reserve more memory than the payload justifies.
const MIN_SAMPLE_LEN: usize = 1 + 1 + 8;
const MIN_SERIES_LEN: usize = 1 + 1;
const MIN_TOMBSTONE_LEN: usize = 1 + 1 + 1;
const MIN_CHUNK_LEN: usize = 1 + 1;

/// Why a payload whose checksum matched still could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Truncated,
    VarintOverflow,
    TooManyEntries,
    BadUtf8,
    TrailingBytes,
    UnknownType(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("payload ends inside a field"),
            DecodeError::VarintOverflow => f.write_str("varint longer than 64 bits"),
            DecodeError::TooManyEntries => f.write_str("entry count exceeds payload size"),
            DecodeError::BadUtf8 => f.write_str("label is not UTF-8"),
            DecodeError::TrailingBytes => f.write_str("bytes after the last entry"),
            DecodeError::UnknownType(t) => write!(f, "unknown record type {t}"),
        }
    }
}

#[inline]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline]
fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

#[inline]
fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, zigzag(x));
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// The frame type byte (without [`FLAG_MORE`]) of a record.
pub(crate) fn record_type(r: &Record) -> u8 {
    match r {
        Record::Series(_) => TYPE_SERIES,
        Record::Samples(_) => TYPE_SAMPLES,
        Record::Tombstones(_) => TYPE_TOMBSTONES,
        Record::Chunks(_) => TYPE_CHUNKS,
    }
}

/// Appends one frame holding `r` to `buf`. Returns `Err(len)` when the payload does not fit the
/// 32-bit length field; `buf` is then left as it was.
pub(crate) fn encode_frame(buf: &mut Vec<u8>, r: &Record, more: bool) -> Result<(), usize> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    encode_payload(buf, r);
    let payload_len = buf.len() - start - HEADER_LEN;
    let Ok(len32) = u32::try_from(payload_len) else {
        buf.truncate(start);
        return Err(payload_len);
    };
    let ty = record_type(r) | if more { FLAG_MORE } else { 0 };
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[ty]), &buf[start + HEADER_LEN..]);
    buf[start] = ty;
    buf[start + 1..start + 5].copy_from_slice(&len32.to_le_bytes());
    buf[start + 5..start + 9].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The CRC32C a frame header must carry for type byte `ty` and `payload`.
#[inline]
pub(crate) fn frame_crc(ty: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[ty]), payload)
}

fn encode_payload(buf: &mut Vec<u8>, r: &Record) {
    match r {
        Record::Series(series) => {
            put_uvarint(buf, series.len() as u64);
            for s in series {
                put_uvarint(buf, s.r);
                put_uvarint(buf, s.labels.len() as u64);
                for l in &s.labels {
                    put_str(buf, &l.name);
                    put_str(buf, &l.value);
                }
            }
        }
        Record::Samples(samples) => {
            put_uvarint(buf, samples.len() as u64);
            // Worst case is 10 + 10 + 8 bytes a sample; reserving it keeps the loop free of regrowth.
            buf.reserve(samples.len() * 28);
            let (mut pr, mut pt) = (0u64, 0i64);
            for s in samples {
                // Deltas from the previous sample: refs of one scrape are mostly ascending by one and
                // timestamps mostly equal, so both fit in one byte.
                put_varint(buf, s.r.wrapping_sub(pr) as i64);
                put_varint(buf, s.t.wrapping_sub(pt));
                buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
                pr = s.r;
                pt = s.t;
            }
        }
        Record::Tombstones(stones) => {
            put_uvarint(buf, stones.len() as u64);
            for &(r, mint, maxt) in stones {
                put_uvarint(buf, r);
                put_varint(buf, mint);
                put_varint(buf, maxt);
            }
        }
        Record::Chunks(chunks) => {
            put_uvarint(buf, chunks.len() as u64);
            for c in chunks {
                put_uvarint(buf, c.r);
                put_uvarint(buf, c.bytes.len() as u64);
                buf.extend_from_slice(&c.bytes);
            }
        }
    }
}

struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    #[inline]
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        // One-byte fast path: almost every delta in a samples record is a single byte.
        if let Some(&c) = self.b.get(self.pos)
            && c < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(c));
        }
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Err(DecodeError::Truncated);
            };
            self.pos += 1;
            if c < 0x80 {
                if shift == 63 && c > 1 {
                    return Err(DecodeError::VarintOverflow);
                }
                return Ok(x | u64::from(c) << shift);
            }
            x |= u64::from(c & 0x7f) << shift;
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::VarintOverflow);
            }
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<i64, DecodeError> {
        self.uvarint().map(unzigzag)
    }

    #[inline]
    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let s = self
            .b
            .get(self.pos..self.pos + 8)
            .ok_or(DecodeError::Truncated)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        self.pos += 8;
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8)
    }

    fn count(&mut self, min_entry_len: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        let rest = (self.b.len() - self.pos) as u64;
        if n > rest / min_entry_len as u64 {
            return Err(DecodeError::TooManyEntries);
        }
        Ok(n as usize)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Decodes the payload of a frame whose type byte (flag already stripped) is `ty`.
pub(crate) fn decode(ty: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    let mut d = Decoder { b: payload, pos: 0 };
    let rec = match ty {
        TYPE_SERIES => {
            let n = d.count(MIN_SERIES_LEN)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint()?;
                let nl = d.count(2)?;
                let mut pairs = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = d.string()?;
                    let value = d.string()?;
                    pairs.push((name, value));
                }
                out.push(SeriesRecord {
                    r,
                    labels: Labels::from_pairs(pairs),
                });
            }
            Record::Series(out)
        }
        TYPE_SAMPLES => {
            let n = d.count(MIN_SAMPLE_LEN)?;
            let mut out = Vec::with_capacity(n);
            let (mut r, mut t) = (0u64, 0i64);
            for _ in 0..n {
                r = r.wrapping_add(d.varint()? as u64);
                t = t.wrapping_add(d.varint()?);
                let v = f64::from_bits(d.u64_le()?);
                out.push(SampleRecord { r, t, v });
            }
            Record::Samples(out)
        }
        TYPE_TOMBSTONES => {
            let n = d.count(MIN_TOMBSTONE_LEN)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint()?;
                let mint = d.varint()?;
                let maxt = d.varint()?;
                out.push((r, mint, maxt));
            }
            Record::Tombstones(out)
        }
        TYPE_CHUNKS => {
            let n = d.count(MIN_CHUNK_LEN)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint()?;
                let bytes = d.bytes()?.to_vec();
                out.push(ChunkRecord { r, bytes });
            }
            Record::Chunks(out)
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    d.finish()?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for x in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            put_varint(&mut b, x);
            let mut d = Decoder { b: &b, pos: 0 };
            assert_eq!(d.varint(), Ok(x));
            assert!(d.finish().is_ok());
        }
        // Eleven continuation bytes cannot be a 64-bit value.
        let b = [0xffu8; 11];
        assert_eq!(
            Decoder { b: &b, pos: 0 }.uvarint(),
            Err(DecodeError::VarintOverflow)
        );
        // Ten bytes whose last carries more than the 64th bit.
        let mut b = vec![0xffu8; 9];
        b.push(0x02);
        assert_eq!(
            Decoder { b: &b, pos: 0 }.uvarint(),
            Err(DecodeError::VarintOverflow)
        );
    }

    #[test]
    fn a_huge_claimed_count_is_refused_before_allocating() {
        let mut b = Vec::new();
        put_uvarint(&mut b, u64::MAX / 2);
        assert_eq!(decode(TYPE_SAMPLES, &b), Err(DecodeError::TooManyEntries));
        assert_eq!(decode(TYPE_SERIES, &b), Err(DecodeError::TooManyEntries));
    }
}
