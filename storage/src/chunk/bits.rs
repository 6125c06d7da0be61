//! Bit-level I/O shared by the XOR appender and iterator.
//!
//! Both sides move up to 64 bits per operation through a `u64` so that the common one- to
//! twenty-bit fields cost a shift and an OR rather than a loop over single bits.

/// Writes bits onto the end of a chunk's bytes, for the span of one append.
///
/// Between appends the chunk is just its bytes plus the number of bits used in the last byte
/// (see [`BitWriter::resume`]): `buf` is then a complete chunk as Prometheus would have written
/// it, the partial last byte with its unused low bits zero. Keeping the 64-bit accumulator only
/// while appending saves 16 bytes in every open chunk, and at 460k series that is 7 MiB of RSS.
pub(super) struct BitWriter {
    pub(super) buf: Vec<u8>,
    /// Pending bits, right-aligned; only the low `nacc` bits are set.
    acc: u64,
    /// Number of pending bits, always below 64.
    nacc: u32,
}

/// The initial bytes of an empty chunk: just the zero sample count, with room to grow.
pub(super) fn empty_chunk() -> Vec<u8> {
    // Start small and grow in small steps (see `BitWriter::grow`): every series holds one open
    // chunk, so at 460k series each byte of unused capacity is 460 kB of RSS.
    let mut buf = Vec::with_capacity(32);
    buf.extend_from_slice(&[0, 0]);
    buf
}

impl BitWriter {
    /// Continues a chunk whose last byte holds `used_bits` (0–7; 0 means it is full) encoded bits:
    /// that partial byte is taken back off `buf` into the accumulator.
    #[inline(always)]
    pub(super) fn resume(mut buf: Vec<u8>, used_bits: u8) -> BitWriter {
        let nacc = u32::from(used_bits);
        let mut acc = 0;
        if nacc > 0
            && let Some(last) = buf.pop()
        {
            acc = u64::from(last >> (8 - nacc));
        }
        BitWriter { buf, acc, nacc }
    }

    /// Writes the pending bits out and gives back the complete chunk with the number of bits used
    /// in its last byte, for the next [`BitWriter::resume`].
    #[inline(always)]
    pub(super) fn finish(mut self) -> (Vec<u8>, u8) {
        let n = self.nacc;
        if n > 0 {
            let word = self.acc << (64 - n);
            // A fixed 8-byte copy is one store; a variable-length one would call memcpy.
            let len = self.buf.len() + n.div_ceil(8) as usize;
            self.reserve_word();
            self.buf.extend_from_slice(&word.to_be_bytes());
            self.buf.truncate(len);
        }
        (self.buf, (n % 8) as u8)
    }

    /// Appends the low `n` bits of `v` (1 ≤ n ≤ 64); `v` must have no bits set above them.
    #[inline(always)]
    pub(super) fn put(&mut self, v: u64, n: u32) {
        debug_assert!((1..=64).contains(&n));
        debug_assert!(n == 64 || v >> n == 0);
        let free = 64 - self.nacc;
        if n < free {
            self.acc = (self.acc << n) | v;
            self.nacc += n;
        } else {
            let rest = n - free;
            // `free` is 64 only when the accumulator is empty (and so zero), where a wrapped
            // shift by 0 gives the same zero.
            let word = self.acc.wrapping_shl(free) | (v >> rest);
            self.reserve_word();
            self.buf.extend_from_slice(&word.to_be_bytes());
            self.acc = v & ((1u64 << rest) - 1);
            self.nacc = rest;
        }
    }

    /// Makes room for one more 8-byte word.
    #[inline(always)]
    fn reserve_word(&mut self) {
        if self.buf.capacity() - self.buf.len() < 8 {
            self.grow();
        }
    }

    /// Grows by a quarter (at least 32 bytes) instead of `Vec`'s doubling, which leaves a full
    /// chunk's buffer a quarter empty on average. The allocator rounds each request up to its size
    /// class and reallocates in place while the class still fits, so most of these are cheap.
    #[cold]
    fn grow(&mut self) {
        let len = self.buf.len();
        self.buf.reserve_exact((len / 4).max(32));
    }
}

/// Reads bits from a borrowed byte slice, most significant bit first.
///
/// Past the end of the slice it reads zeros instead of failing, so the decoder checks for overrun
/// once per sample (see [`BitReader::overran`]) instead of once per field.
#[derive(Clone)]
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load (may run past the end, over virtual zero bytes).
    pos: usize,
    /// Unread bits, left-aligned. Bits below the top `valid` ones are either zero or the stream's
    /// following bits, so reloading the same bytes over them with OR is harmless.
    bits: u64,
    valid: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader {
            data,
            pos: 0,
            bits: 0,
            valid: 0,
        }
    }

    /// Tops the buffer up to at least 56 valid bits.
    #[inline(always)]
    pub(super) fn refill(&mut self) {
        let word = match self.data.get(self.pos..self.pos + 8) {
            Some(s) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(s);
                u64::from_be_bytes(b)
            }
            None => self.tail_word(),
        };
        self.bits |= word >> self.valid;
        let take = (63 - self.valid) >> 3;
        self.pos += take as usize;
        self.valid += take * 8;
    }

    #[cold]
    fn tail_word(&self) -> u64 {
        let mut b = [0u8; 8];
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        b[..rest.len()].copy_from_slice(rest);
        u64::from_be_bytes(b)
    }

    /// The next bits without consuming them; at least the top 56 are valid after a refill.
    #[inline(always)]
    pub(super) fn peek(&self) -> u64 {
        self.bits
    }

    /// Drops `n` (< 64) already-valid bits.
    #[inline(always)]
    pub(super) fn skip(&mut self, n: u32) {
        debug_assert!(n <= self.valid && n < 64);
        self.bits <<= n;
        self.valid -= n;
    }

    /// Reads `n` bits (1 ≤ n ≤ 56) that the caller knows are buffered, i.e. after a refill and
    /// with no more than 56 bits read since.
    #[inline(always)]
    pub(super) fn read_buffered(&mut self, n: u32) -> u64 {
        debug_assert!(n >= 1 && n <= self.valid);
        let v = self.bits >> (64 - n);
        self.bits <<= n;
        self.valid -= n;
        v
    }

    /// Reads `n` bits, 1 ≤ n ≤ 64, refilling as needed.
    #[inline(always)]
    pub(super) fn read(&mut self, n: u32) -> u64 {
        if n > self.valid {
            self.refill();
            if n > self.valid {
                // Only a full 57- to 64-bit field gets here; split it across two refills.
                let hi = self.read_buffered(n - 32);
                self.refill();
                return (hi << 32) | self.read_buffered(32);
            }
        }
        self.read_buffered(n)
    }

    /// Bits consumed so far.
    #[inline(always)]
    pub(super) fn consumed(&self) -> usize {
        self.pos * 8 - self.valid as usize
    }

    /// Whether more bits were consumed than the slice holds: the stream was truncated.
    #[inline(always)]
    pub(super) fn overran(&self) -> bool {
        self.consumed() > self.data.len() * 8
    }
}
