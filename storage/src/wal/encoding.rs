//! Record payload encoding and the frame that carries it, plain or Snappy-compressed. The byte
//! layouts are specified in `storage/FORMAT.md` (section "WAL"); this file must stay in step with
//! that document.

use edgeprom_model::Labels;

use super::{ChunkRecord, Record, SampleRecord, SeriesRecord};

/// Frame header: type (1) + payload length (4, LE) + CRC32C (4, LE).
pub(crate) const HEADER_LEN: usize = 9;

pub(crate) const TYPE_SERIES: u8 = 1;
pub(crate) const TYPE_SAMPLES: u8 = 2;
pub(crate) const TYPE_TOMBSTONES: u8 = 3;
pub(crate) const TYPE_CHUNKS: u8 = 4;
/// A record of one of the types above, compressed with Snappy; the inner type is the payload's
/// first byte. Readers of every version from this one on accept both forms of every record.
pub(crate) const TYPE_SNAPPY: u8 = 5;
/// The highest valid type byte (without [`FLAG_MORE`]).
pub(crate) const TYPE_MAX: u8 = TYPE_SNAPPY;
/// Set in the type byte of every frame of a commit except its last, so that replay and repair can
/// treat a commit as all-or-nothing even though each record has its own frame.
pub(crate) const FLAG_MORE: u8 = 0x80;

/// Smallest possible encoded entry of each record kind; bounds the entry count a payload may claim
/// so that a corrupt count can never make the decoder reserve more memory than the payload justifies.
const MIN_SAMPLE_LEN: usize = 1 + 1 + 8;
const MIN_SERIES_LEN: usize = 1 + 1;
const MIN_TOMBSTONE_LEN: usize = 1 + 1 + 1;
const MIN_CHUNK_LEN: usize = 1 + 1;

/// A Snappy block never expands its input more than about 21× (a 3-byte copy element yields at
/// most 64 bytes); a claimed decompressed length beyond this many times the compressed size is
/// corrupt, so no content of a file makes the decoder reserve more than this multiple of it.
const MAX_SNAPPY_RATIO: u64 = 32;

/// Payloads shorter than this are written uncompressed: Snappy cannot win back the inner type
/// and length bytes on them, and trying costs a call per tiny commit.
const MIN_COMPRESS_LEN: usize = 64;

/// Why a payload whose checksum matched still could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Truncated,
    VarintOverflow,
    TooManyEntries,
    BadUtf8,
    TrailingBytes,
    UnknownType(u8),
    /// A compressed record's inner type is not a plain record type.
    BadInnerType(u8),
    /// A compressed record claims a decompressed length its compressed size cannot produce.
    BadRawLength,
    /// The Snappy block does not decompress to the claimed length.
    Decompress,
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
            DecodeError::BadInnerType(t) => write!(f, "compressed record of invalid type {t}"),
            DecodeError::BadRawLength => {
                f.write_str("compressed record claims an impossible decompressed length")
            }
            DecodeError::Decompress => f.write_str("snappy block does not decompress"),
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

/// Appends one frame holding `r` to `buf`, uncompressed: the only form versions before
/// [`TYPE_SNAPPY`] wrote, kept for the tests that check such segments still replay. Returns
/// `Err(len)` when the payload does not fit the 32-bit length field; `buf` is then left as it was.
#[cfg(test)]
pub(crate) fn encode_frame(buf: &mut Vec<u8>, r: &Record, more: bool) -> Result<(), usize> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    encode_payload(buf, r);
    finish_frame(buf, start, record_type(r), more)
}

/// Fills in the header of the frame that starts at `start` and whose payload is the rest of `buf`.
fn finish_frame(buf: &mut Vec<u8>, start: usize, ty: u8, more: bool) -> Result<(), usize> {
    let payload_len = buf.len() - start - HEADER_LEN;
    let Ok(len32) = u32::try_from(payload_len) else {
        buf.truncate(start);
        return Err(payload_len);
    };
    let ty = ty | if more { FLAG_MORE } else { 0 };
    let crc = frame_crc(ty, &buf[start + HEADER_LEN..]);
    buf[start] = ty;
    buf[start + 1..start + 5].copy_from_slice(&len32.to_le_bytes());
    buf[start + 5..start + 9].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Writes frames compressed with Snappy ([`TYPE_SNAPPY`]) when that makes them smaller; keeps
/// its buffers and hash table between frames so that a commit allocates nothing once warm.
pub(crate) struct Compressor {
    raw: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            raw: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

impl Compressor {
    /// Appends one frame holding `r` to `buf`: a [`TYPE_SNAPPY`] frame if the compressed form is
    /// smaller, else the plain frame. Returns `Err(len)` when the payload does not fit the 32-bit
    /// length field; `buf` is then left as it was.
    pub(crate) fn encode_frame(
        &mut self,
        buf: &mut Vec<u8>,
        r: &Record,
        more: bool,
    ) -> Result<(), usize> {
        self.raw.clear();
        encode_payload(&mut self.raw, r);
        let start = buf.len();
        buf.extend_from_slice(&[0; HEADER_LEN]);
        let ty = record_type(r);
        if self.raw.len() >= MIN_COMPRESS_LEN && u32::try_from(self.raw.len()).is_ok() {
            buf.push(ty);
            put_uvarint(buf, self.raw.len() as u64);
            let at = buf.len();
            buf.resize(at + snap::raw::max_compress_len(self.raw.len()), 0);
            // Only fails for inputs above Snappy's ~4 GiB limit, excluded above; the plain frame
            // is the fallback either way.
            if let Ok(n) = self.snappy.compress(&self.raw, &mut buf[at..]) {
                buf.truncate(at + n);
                if buf.len() - start - HEADER_LEN < self.raw.len() {
                    return finish_frame(buf, start, TYPE_SNAPPY, more);
                }
            }
            buf.truncate(start + HEADER_LEN);
        }
        buf.extend_from_slice(&self.raw);
        finish_frame(buf, start, ty, more)
    }
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

/// The record type a frame holds, looking inside a compressed frame: what a reader that wants only
/// some kinds filters on, without decompressing. `ty` is the type byte without [`FLAG_MORE`].
pub(crate) fn record_kind(ty: u8, payload: &[u8]) -> u8 {
    if ty == TYPE_SNAPPY {
        payload.first().copied().unwrap_or(0)
    } else {
        ty
    }
}

/// Decodes the payload of a frame whose type byte (flag already stripped) is `ty`; a compressed
/// frame is decompressed first.
pub(crate) fn decode(ty: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    if ty != TYPE_SNAPPY {
        return decode_plain(ty, payload);
    }
    let mut d = Decoder { b: payload, pos: 0 };
    let &inner = payload.first().ok_or(DecodeError::Truncated)?;
    d.pos = 1;
    if !(TYPE_SERIES..=TYPE_CHUNKS).contains(&inner) {
        return Err(DecodeError::BadInnerType(inner));
    }
    let raw_len = d.uvarint()?;
    let block = &payload[d.pos..];
    // Checked before anything is allocated: the claim must be one the block could produce.
    if raw_len > block.len() as u64 * MAX_SNAPPY_RATIO || raw_len > u64::from(u32::MAX) {
        return Err(DecodeError::BadRawLength);
    }
    // Snappy's own preamble repeats the length; both must agree.
    if snap::raw::decompress_len(block).ok().map(|n| n as u64) != Some(raw_len) {
        return Err(DecodeError::BadRawLength);
    }
    let mut raw = vec![0u8; raw_len as usize];
    match snap::raw::Decoder::new().decompress(block, &mut raw) {
        Ok(n) if n as u64 == raw_len => decode_plain(inner, &raw),
        _ => Err(DecodeError::Decompress),
    }
}

fn decode_plain(ty: u8, payload: &[u8]) -> Result<Record, DecodeError> {
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
