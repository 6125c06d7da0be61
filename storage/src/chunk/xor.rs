//! The XOR appender and iterator.

use super::ChunkError;
use super::bits::{BitReader, BitWriter, empty_chunk};

/// Marks "no leading/trailing-zero window chosen yet": the next non-zero XOR must write one.
const NO_WINDOW: u8 = 0xff;

/// Whether `x` fits the `nbits`-wide delta-of-delta bucket. The range is Prometheus's, which is
/// skewed one towards the positive side: -(2^(n-1) - 1) ..= 2^(n-1).
#[inline(always)]
fn fits(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Appends samples to one open XOR chunk, owning its bytes.
///
/// The chunk is complete after every [`append`](XorAppender::append): [`bytes`](XorAppender::bytes)
/// can be handed to a reader or written out at any moment, and the bytes are identical to what
/// Prometheus's own appender writes for the same samples.
pub struct XorAppender {
    /// The complete chunk as Prometheus would write it, the last byte possibly partial.
    buf: Vec<u8>,
    /// Bits of `buf`'s last byte in use (0: all of it).
    used_bits: u8,
    num: u16,
    /// Whether `t` and `v` hold a sample appended before the last [`XorAppender::reset`]: the
    /// head's order checks need the newest sample even right after a chunk is cut.
    carried: bool,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        XorAppender::new()
    }
}

impl std::fmt::Debug for XorAppender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XorAppender")
            .field("num_samples", &self.num)
            .field("len", &self.buf.len())
            .field("first_time", &self.first_time())
            .field("last_time", &self.last_time())
            .finish()
    }
}

impl XorAppender {
    /// An empty chunk.
    pub fn new() -> XorAppender {
        XorAppender {
            buf: empty_chunk(),
            used_bits: 0,
            num: 0,
            carried: false,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// An empty chunk whose [`newest`](XorAppender::newest) sample is `(t, v_bits)`: a series
    /// continuing after its previous chunk was written out.
    pub fn continuing(t: i64, v_bits: u64) -> XorAppender {
        XorAppender {
            carried: true,
            t,
            v: v_bits,
            ..XorAppender::new()
        }
    }

    /// Starts a new, empty chunk (its previous bytes are dropped: write them out first). The newest
    /// sample appended so far stays available through [`newest`](XorAppender::newest).
    pub fn reset(&mut self) {
        let carried = self.num > 0 || self.carried;
        *self = XorAppender {
            carried,
            t: self.t,
            v: self.v,
            ..XorAppender::new()
        };
    }

    /// The newest sample appended, as `(timestamp, value bits)`, in this chunk or before the last
    /// [`reset`](XorAppender::reset).
    pub fn newest(&self) -> Option<(i64, u64)> {
        (self.num > 0 || self.carried).then_some((self.t, self.v))
    }

    /// Appends one sample.
    ///
    /// The caller guarantees `t` is not before the previous sample's timestamp (the head refuses
    /// out-of-order samples before they get here); the encoding itself wraps, so even a violation
    /// decodes back to the same numbers. The value is stored bit for bit, so NaN payloads and the
    /// stale marker survive.
    ///
    /// # Panics
    ///
    /// If the chunk already holds `u16::MAX` samples, which its count header cannot exceed. The
    /// head cuts chunks at [`MAX_SAMPLES_PER_CHUNK`](super::MAX_SAMPLES_PER_CHUNK), far below.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        assert!(self.num < u16::MAX, "XOR chunk sample count overflow");
        let v = v.to_bits();
        let mut w = BitWriter::resume(std::mem::take(&mut self.buf), self.used_bits);
        match self.num {
            0 => {
                put_varint_bytes(&mut w, zigzag(t));
                w.put(v, 64);
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                put_varint_bytes(&mut w, t_delta);
                self.t_delta = t_delta;
                self.put_value(&mut w, v);
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                // Control bits and payload go out as one field; the bit order is the same.
                if dod == 0 {
                    w.put(0, 1);
                } else if fits(dod, 14) {
                    w.put((0b10 << 14) | (dod as u64 & 0x3fff), 16);
                } else if fits(dod, 17) {
                    w.put((0b110 << 17) | (dod as u64 & 0x1_ffff), 20);
                } else if fits(dod, 20) {
                    w.put((0b1110 << 20) | (dod as u64 & 0xf_ffff), 24);
                } else {
                    w.put(0b1111, 4);
                    w.put(dod as u64, 64);
                }
                self.t_delta = t_delta;
                self.put_value(&mut w, v);
            }
        }
        (self.buf, self.used_bits) = w.finish();
        self.t = t;
        self.v = v;
        self.num += 1;
        self.buf[..2].copy_from_slice(&self.num.to_be_bytes());
    }

    /// Writes the XOR of `v` with the previous value.
    #[inline(always)]
    fn put_value(&mut self, w: &mut BitWriter, v: u64) {
        let x = v ^ self.v;
        if x == 0 {
            w.put(0, 1);
            return;
        }
        // The 5-bit field cannot hold 32 or more; a smaller count just carries a few zero bits.
        let leading = x.leading_zeros().min(31);
        let trailing = x.trailing_zeros();
        if self.leading != NO_WINDOW
            && leading >= u32::from(self.leading)
            && trailing >= u32::from(self.trailing)
        {
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            w.put(0b10, 2);
            w.put(x >> self.trailing, sig);
        } else {
            self.leading = leading as u8;
            self.trailing = trailing as u8;
            let sig = 64 - leading - trailing;
            // 64 significant bits wraps to 0 in the 6-bit field; 0 itself never occurs (x != 0).
            let head = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
            w.put(head, 13);
            w.put(x >> trailing, sig);
        }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// The complete chunk: count header and sample stream.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Timestamp of the first sample, if any.
    pub fn first_time(&self) -> Option<i64> {
        // Decoded from the bytes rather than kept in a field: every head series holds an open
        // chunk, and eight bytes each is more than the rare callers' decoding costs.
        if self.num == 0 {
            return None;
        }
        XorIterator::over(&self.buf).next_sample().map(|(t, _)| t)
    }

    /// Timestamp of the last sample, if any.
    pub fn last_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// Iterates over the samples appended so far.
    pub fn iter(&self) -> XorIterator<'_> {
        XorIterator::over(&self.buf)
    }

    /// Gives up the chunk's bytes, e.g. to write a full chunk out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Reopens a chunk for appending, decoding it to recover the encoder's state.
    ///
    /// Appending to the result produces the same bytes as appending every sample to one appender
    /// from the start. Bytes past the end of the encoded samples (such as the empty byte that
    /// Prometheus before 3.0 left after a byte-aligned stream, or garbage) are dropped.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<XorAppender, ChunkError> {
        let (mut a, consumed) = {
            let mut it = XorIterator::new(&bytes)?;
            while it.next_sample().is_some() {}
            if let Some(e) = it.err.take() {
                return Err(e);
            }
            let a = XorAppender {
                buf: Vec::new(),
                used_bits: 0,
                num: it.read,
                carried: false,
                t: it.t,
                v: it.v,
                t_delta: it.t_delta,
                // A chunk whose values never changed has chosen no window yet. Prometheus's
                // reopened appender would assume (0, 0) here; starting without one instead keeps
                // the bytes equal to a never-closed appender's, and both decode the same.
                leading: if it.window { it.leading } else { NO_WINDOW },
                trailing: it.trailing,
            };
            (a, it.r.consumed())
        };

        bytes.truncate(2 + consumed.div_ceil(8));
        let rem = (consumed % 8) as u32;
        if rem > 0
            && let Some(last) = bytes.last_mut()
        {
            // Keep only the encoded bits of the partial byte so later appends can OR into it.
            *last &= 0xffu8 << (8 - rem);
        }
        a.used_bits = rem as u8;
        a.buf = bytes;
        Ok(a)
    }
}

#[inline(always)]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

/// Writes `x` as a LEB128 unsigned varint, one 8-bit field per byte (the stream is byte-aligned
/// only for the first sample, so this cannot just extend the buffer).
#[inline]
fn put_varint_bytes(w: &mut BitWriter, mut x: u64) {
    while x >= 0x80 {
        w.put((x & 0x7f) | 0x80, 8);
        x >>= 7;
    }
    w.put(x, 8);
}

/// Decodes an XOR chunk from borrowed bytes, e.g. a memory-mapped region.
///
/// Corrupt or truncated input never panics: the iterator stops early and [`err`](XorIterator::err)
/// says why.
#[derive(Clone)]
pub struct XorIterator<'a> {
    r: BitReader<'a>,
    /// Samples the header promises; lowered to `read` when an error stops the iterator, so the
    /// hot path has a single end check.
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// Whether any non-zero XOR has been decoded, i.e. the encoder's window is known.
    window: bool,
    err: Option<ChunkError>,
}

impl std::fmt::Debug for XorIterator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XorIterator")
            .field("read", &self.read)
            .field("total", &self.total)
            .field("err", &self.err)
            .finish()
    }
}

impl<'a> XorIterator<'a> {
    /// Starts decoding `bytes`, which must at least hold the 2-byte sample count.
    pub fn new(bytes: &'a [u8]) -> Result<XorIterator<'a>, ChunkError> {
        if bytes.len() < 2 {
            return Err(ChunkError::TooShort { len: bytes.len() });
        }
        Ok(XorIterator::over(bytes))
    }

    /// `bytes` must be at least 2 long.
    fn over(bytes: &'a [u8]) -> XorIterator<'a> {
        let (head, stream) = bytes.split_at(2);
        XorIterator {
            r: BitReader::new(stream),
            total: u16::from_be_bytes([head[0], head[1]]),
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            window: false,
            err: None,
        }
    }

    /// The next sample, or `None` at the end of the chunk or on corrupt input (then
    /// [`err`](XorIterator::err) is set).
    #[inline]
    pub fn next_sample(&mut self) -> Option<(i64, f64)> {
        if self.read >= self.total {
            return None;
        }
        if self.read < 2 {
            return self.next_head_sample();
        }
        self.r.refill();
        let dod = match (!self.r.peek()).leading_zeros() {
            0 => {
                self.r.skip(1);
                0
            }
            1 => {
                self.r.skip(2);
                sign_extend(self.r.read_buffered(14), 14)
            }
            2 => {
                self.r.skip(3);
                sign_extend(self.r.read_buffered(17), 17)
            }
            3 => {
                self.r.skip(4);
                sign_extend(self.r.read_buffered(20), 20)
            }
            _ => {
                self.r.skip(4);
                self.r.read(64) as i64
            }
        };
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value()?;
        self.finish_sample()
    }

    /// The first two samples carry a full timestamp and a plain delta as byte-wise varints.
    #[cold]
    fn next_head_sample(&mut self) -> Option<(i64, f64)> {
        let Some(raw) = self.read_uvarint() else {
            return self.fail(ChunkError::VarintOverflow { sample: self.read });
        };
        if self.read == 0 {
            self.t = unzigzag(raw);
            self.v = self.r.read(64);
        } else {
            self.t_delta = raw;
            self.t = self.t.wrapping_add(raw as i64);
            self.read_value()?;
        }
        self.finish_sample()
    }

    #[inline(always)]
    fn finish_sample(&mut self) -> Option<(i64, f64)> {
        if self.r.overran() {
            return self.fail(ChunkError::Truncated {
                decoded: self.read,
                total: self.total,
            });
        }
        self.read += 1;
        Some((self.t, f64::from_bits(self.v)))
    }

    #[inline(always)]
    fn read_value(&mut self) -> Option<()> {
        self.r.refill();
        let control = self.r.peek() >> 62;
        if control < 0b10 {
            self.r.skip(1);
            return Some(());
        }
        self.r.skip(2);
        if control == 0b11 {
            let head = self.r.read_buffered(11) as u32;
            let leading = head >> 6;
            // 0 stands for 64: a zero-width field never occurs since an unchanged value is a 0 bit.
            let sig = match head & 63 {
                0 => 64,
                s => s,
            };
            if leading + sig > 64 {
                return self.fail(ChunkError::BadValueWidth {
                    sample: self.read,
                    leading: leading as u8,
                    significant: sig as u8,
                });
            }
            self.leading = leading as u8;
            self.trailing = (64 - leading - sig) as u8;
        }
        // Before any window is chosen a reuse bit means (0, 0): the 64-bit field that
        // Prometheus's reopened appender writes.
        self.window = true;
        let trailing = u32::from(self.trailing);
        let sig = 64 - u32::from(self.leading) - trailing;
        self.v ^= self.r.read(sig) << trailing;
        Some(())
    }

    /// Reads a LEB128 varint as Go's `binary.ReadUvarint` does; `None` if it overflows 64 bits.
    fn read_uvarint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for i in 0..10 {
            let b = self.r.read(8);
            // Past the end the reader yields zero bytes, which end the loop; the overrun is
            // reported as truncation by the caller.
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return None;
                }
                return Some(x | (b << (7 * i)));
            }
            x |= (b & 0x7f) << (7 * i);
        }
        None
    }

    #[cold]
    fn fail<T>(&mut self, e: ChunkError) -> Option<T> {
        // Past the end the reader sees zeros, which can look like a bad field; the real cause is
        // the missing bytes.
        let e = if self.r.overran() {
            ChunkError::Truncated {
                decoded: self.read,
                total: self.total,
            }
        } else {
            e
        };
        self.err = Some(e);
        self.total = self.read;
        None
    }

    /// Advances to the first sample with timestamp `>= t` and returns it.
    ///
    /// Like Prometheus's `Seek` it never moves backwards: if the sample returned last already
    /// qualifies, it is returned again, and the next [`next_sample`](XorIterator::next_sample)
    /// continues after it.
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if self.read > 0 && self.err.is_none() && self.t >= t {
            return Some((self.t, f64::from_bits(self.v)));
        }
        while let Some(s) = self.next_sample() {
            if s.0 >= t {
                return Some(s);
            }
        }
        None
    }

    /// Why iteration stopped before the header's sample count, if it did.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }
}

impl Iterator for XorIterator<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        self.next_sample()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.total - self.read)))
    }
}

#[inline(always)]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Prometheus's buckets are skewed one to the positive side, so only values above 2^(n-1) are
/// negative.
#[inline(always)]
fn sign_extend(bits: u64, n: u32) -> i64 {
    let b = bits as i64;
    if b > 1 << (n - 1) { b - (1 << n) } else { b }
}
