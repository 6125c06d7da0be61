//! Sample encoding inside a block. Timestamps are one pco stream of i64; values are integer
//! mantissas at a common decimal scale (VictoriaMetrics' idea) in one pco stream of i64, with the
//! few non-decimal values (stale markers, NaN payloads, infinities, -0) as exceptions carrying their
//! raw bits, or a pco stream of f64 for series that are true floats. pco picks the delta order
//! (counters: 1, grid timestamps: 2) and entropy-codes the result. The byte layout is in
//! `storage/FORMAT-block.md`, section "samples".
//!
//! The varint + zstd encodings this replaced are kept under `cfg(test)` for the measurements.

/// Exact powers of ten: every one up to 10^22 is representable in an f64, so dividing an exact
/// mantissa by one is a single correctly rounded operation — the same one a decimal parser does.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Largest decimal exponent tried; beyond 15 digits an f64 carries no exact decimal anyway.
const MAX_SCALE: u8 = 15;

/// Mantissas stay below 2^53 so that converting them to f64 is exact.
const MANTISSA_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Value stream kinds of the varint + zstd alternative.
#[cfg(test)]
pub(crate) const KIND_DECIMAL_DELTA: u8 = 1;
#[cfg(test)]
pub(crate) const KIND_DECIMAL_DOD: u8 = 2;
#[cfg(test)]
pub(crate) const KIND_XOR: u8 = 3;

/// Why a stream could not be decoded. Only reachable with bytes that passed the CRC check but were
/// not written by this encoder, so the reason is kept short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// A cursor over borrowed bytes whose every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Result<Reader<'a>, DecodeError> {
        if pos > buf.len() {
            return Err(DecodeError("offset past the end"));
        }
        Ok(Reader { buf, pos })
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError("unexpected end of data"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
        }
    }

    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint that must fit in `usize` and be at most `max`.
    pub(crate) fn len(&mut self, max: usize) -> Result<usize, DecodeError> {
        let v = self.uvarint()?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or(DecodeError("length out of range"))
    }
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

pub(crate) fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, zigzag(x));
}

#[cfg(test)]
fn uvarint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
/// Timestamps: first as a varint, then the first delta, then deltas of deltas — on an aligned
/// scrape grid those are all zero, which zstd folds to almost nothing. Wrapping arithmetic keeps
/// any pair of i64 timestamps exact.
pub(crate) fn encode_timestamps(ts: &[i64], out: &mut Vec<u8>) {
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, &t) in ts.iter().enumerate() {
        match i {
            0 => put_varint(out, t),
            1 => {
                prev_delta = t.wrapping_sub(prev);
                put_varint(out, prev_delta);
            }
            _ => {
                let d = t.wrapping_sub(prev);
                put_varint(out, d.wrapping_sub(prev_delta));
                prev_delta = d;
            }
        }
        prev = t;
    }
}

/// `v` as `mantissa / 10^scale` with the smallest scale that reproduces its bits exactly.
fn decimal_of(v: f64) -> Option<(i64, u8)> {
    if !v.is_finite() {
        return None;
    }
    for scale in 0..=MAX_SCALE {
        let s = v * POW10[scale as usize];
        if s.abs() >= MANTISSA_LIMIT {
            return None;
        }
        let m = s.round();
        if (m / POW10[scale as usize]).to_bits() == v.to_bits() {
            return Some((m as i64, scale));
        }
    }
    None
}

fn decimal_value(m: i64, scale: u8) -> f64 {
    m as f64 / POW10[scale as usize]
}

#[cfg(test)]
/// How a value stream is chosen, for measurements of the alternatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueMode {
    /// Decimal mantissas when exact (delta or dod, whichever is smaller), XOR otherwise.
    Auto,
    /// XOR'd float bits only, as the baseline.
    XorOnly,
}

#[cfg(test)]
/// Values: integers and fixed-point decimals become integer mantissas at one common scale, written
/// as deltas or deltas of deltas (whichever takes fewer varint bytes), as VictoriaMetrics does; the
/// few values that are not exact decimals (NaN payloads, stale markers, infinities, -0) go into an
/// exception list with their raw bits. Series that are mostly true floats are written as XOR with
/// the previous value's bits, byte-transposed so that zstd sees the constant high bytes together.
pub(crate) fn encode_values(vs: &[f64], mode: ValueMode, out: &mut Vec<u8>) {
    if mode == ValueMode::Auto && encode_decimal(vs, out) {
        return;
    }
    out.push(KIND_XOR);
    let mut prev = 0u64;
    let words: Vec<u64> = vs
        .iter()
        .map(|v| {
            let b = v.to_bits();
            let x = b ^ prev;
            prev = b;
            x
        })
        .collect();
    for byte in (0..8).rev() {
        out.extend(words.iter().map(|w| (w >> (byte * 8)) as u8));
    }
}

#[cfg(test)]
fn encode_decimal(vs: &[f64], out: &mut Vec<u8>) -> bool {
    let mut parts = Vec::with_capacity(vs.len());
    let mut exceptions = 0usize;
    let mut scale = 0u8;
    for &v in vs {
        let d = decimal_of(v);
        match d {
            Some((_, s)) => scale = scale.max(s),
            None => exceptions += 1,
        }
        parts.push(d);
    }
    // Beyond this the exception list costs more than XOR would.
    if exceptions * 8 > vs.len() {
        return false;
    }
    let mut mantissas = Vec::with_capacity(vs.len());
    let mut prev = 0i64;
    for (&v, d) in vs.iter().zip(&parts) {
        let m = match d {
            Some((m, s)) => {
                let m = *m as f64 * POW10[(scale - s) as usize];
                if m.abs() >= MANTISSA_LIMIT
                    || decimal_value(m as i64, scale).to_bits() != v.to_bits()
                {
                    return false;
                }
                m as i64
            }
            // An exception repeats the previous mantissa so that it costs a zero delta.
            None => prev,
        };
        mantissas.push(m);
        prev = m;
    }
    let (mut delta_cost, mut dod_cost) = (0usize, 0usize);
    let mut pd = 0i64;
    for i in 1..mantissas.len() {
        let d = mantissas[i].wrapping_sub(mantissas[i - 1]);
        delta_cost += uvarint_len(zigzag(d));
        dod_cost += uvarint_len(zigzag(d.wrapping_sub(pd)));
        pd = d;
    }
    let dod = dod_cost < delta_cost;
    out.push(if dod {
        KIND_DECIMAL_DOD
    } else {
        KIND_DECIMAL_DELTA
    });
    out.push(scale);
    put_uvarint(out, exceptions as u64);
    let mut last = 0usize;
    for (i, (&v, d)) in vs.iter().zip(&parts).enumerate() {
        if d.is_none() {
            put_uvarint(out, (i - last) as u64);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
            last = i;
        }
    }
    let mut pm = 0i64;
    let mut pd = 0i64;
    for (i, &m) in mantissas.iter().enumerate() {
        if i == 0 {
            put_varint(out, m);
        } else {
            let d = m.wrapping_sub(pm);
            put_varint(out, if dod { d.wrapping_sub(pd) } else { d });
            pd = d;
        }
        pm = m;
    }
    true
}

#[cfg(test)]
/// Collects the streams of consecutive series and turns them into one uncompressed group.
#[derive(Default)]
pub(crate) struct GroupBuilder {
    lens: Vec<(usize, usize)>,
    ts: Vec<u8>,
    vals: Vec<u8>,
}

#[cfg(test)]
impl GroupBuilder {
    pub(crate) fn len(&self) -> usize {
        self.lens.len()
    }

    pub(crate) fn raw_size(&self) -> usize {
        self.ts.len() + self.vals.len()
    }

    /// Adds a series; returns its slot in the group.
    pub(crate) fn push(&mut self, samples: &[(i64, f64)], mode: ValueMode) -> usize {
        let (t0, v0) = (self.ts.len(), self.vals.len());
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let vs: Vec<f64> = samples.iter().map(|s| s.1).collect();
        encode_timestamps(&ts, &mut self.ts);
        encode_values(&vs, mode, &mut self.vals);
        self.lens.push((self.ts.len() - t0, self.vals.len() - v0));
        self.lens.len() - 1
    }

    /// The uncompressed group: series count, each series' two stream lengths, then every
    /// timestamp stream, then every value stream — columns, so that like bytes sit together.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw_size() + self.lens.len() * 4 + 4);
        put_uvarint(&mut out, self.lens.len() as u64);
        for &(t, v) in &self.lens {
            put_uvarint(&mut out, t as u64);
            put_uvarint(&mut out, v as u64);
        }
        out.extend_from_slice(&self.ts);
        out.extend_from_slice(&self.vals);
        self.lens.clear();
        self.ts.clear();
        self.vals.clear();
        out
    }
}

/// Value stream kinds of the stored format.
pub(crate) const VALUES_DECIMAL: u8 = 1;
pub(crate) const VALUES_FLOAT: u8 = 2;

/// Values as integer mantissas at one common decimal scale, with the positions and raw bits of
/// the values that are not exact decimals. `None` when the series is mostly true floats.
pub(crate) struct Decimal {
    pub(crate) scale: u8,
    pub(crate) mantissas: Vec<i64>,
    pub(crate) exceptions: Vec<(usize, u64)>,
}

pub(crate) fn decimal_split(vs: &[f64]) -> Option<Decimal> {
    let mut parts = Vec::with_capacity(vs.len());
    let mut num_exc = 0usize;
    let mut scale = 0u8;
    for &v in vs {
        let d = decimal_of(v);
        match d {
            Some((_, s)) => scale = scale.max(s),
            None => num_exc += 1,
        }
        parts.push(d);
    }
    // Each exception costs ~10 bytes; past one in eight a float stream is smaller.
    if num_exc * 8 > vs.len() {
        return None;
    }
    let mut mantissas = Vec::with_capacity(vs.len());
    let mut exceptions = Vec::with_capacity(num_exc);
    let mut prev = 0i64;
    for (i, (&v, d)) in vs.iter().zip(&parts).enumerate() {
        let m = match d {
            Some((m, s)) => {
                let m = *m as f64 * POW10[(scale - s) as usize];
                if m.abs() >= MANTISSA_LIMIT
                    || decimal_value(m as i64, scale).to_bits() != v.to_bits()
                {
                    return None;
                }
                m as i64
            }
            // An exception repeats the previous mantissa so that it costs a zero delta.
            None => {
                exceptions.push((i, v.to_bits()));
                prev
            }
        };
        mantissas.push(m);
        prev = m;
    }
    Some(Decimal {
        scale,
        mantissas,
        exceptions,
    })
}

fn pco_err(e: pco::errors::PcoError) -> String {
    format!("pco: {e}")
}

/// The timestamp stream: pco over the raw i64s (it finds the delta-of-delta itself).
pub(crate) fn encode_timestamps_pco(ts: &[i64]) -> Result<Vec<u8>, String> {
    pco::standalone::simple_compress(ts, &pco::ChunkConfig::default()).map_err(pco_err)
}

/// The value stream: a kind byte, then for decimals the scale, the exceptions and a pco stream of
/// mantissas; for floats a pco stream of f64.
pub(crate) fn encode_values_pco(vs: &[f64]) -> Result<Vec<u8>, String> {
    let cfg = pco::ChunkConfig::default();
    let mut out = Vec::new();
    match decimal_split(vs) {
        Some(d) => {
            out.push(VALUES_DECIMAL);
            out.push(d.scale);
            put_uvarint(&mut out, d.exceptions.len() as u64);
            let mut last = 0usize;
            for &(i, bits) in &d.exceptions {
                put_uvarint(&mut out, (i - last) as u64);
                out.extend_from_slice(&bits.to_le_bytes());
                last = i;
            }
            out.extend(pco::standalone::simple_compress(&d.mantissas, &cfg).map_err(pco_err)?);
        }
        None => {
            out.push(VALUES_FLOAT);
            out.extend(pco::standalone::simple_compress(vs, &cfg).map_err(pco_err)?);
        }
    }
    Ok(out)
}

/// Decompresses a pco stream that must hold exactly `n` numbers.
fn pco_exact<T: pco::data_types::Number>(b: &[u8], n: usize) -> Result<Vec<T>, DecodeError> {
    let v = pco::standalone::simple_decompress::<T>(b)
        .map_err(|_| DecodeError("pco stream does not decode"))?;
    if v.len() != n {
        return Err(DecodeError("pco stream holds the wrong number of samples"));
    }
    Ok(v)
}

pub(crate) fn decode_timestamps_pco(b: &[u8], n: usize) -> Result<Vec<i64>, DecodeError> {
    pco_exact(b, n)
}

pub(crate) fn decode_values_pco(b: &[u8], n: usize) -> Result<Vec<f64>, DecodeError> {
    let mut r = Reader::new(b);
    match r.u8()? {
        VALUES_DECIMAL => {
            let scale = r.u8()?;
            if scale > MAX_SCALE {
                return Err(DecodeError("decimal scale out of range"));
            }
            let num_exc = r.len(n)?;
            let mut exceptions = Vec::with_capacity(num_exc);
            let mut idx = 0usize;
            for k in 0..num_exc {
                let gap = r.len(n)?;
                idx = idx
                    .checked_add(gap)
                    .filter(|&i| i < n && (k == 0 || gap > 0))
                    .ok_or(DecodeError("exception index out of range"))?;
                exceptions.push((idx, r.u64()?));
            }
            let rest = r.bytes(r.remaining())?;
            let mut out: Vec<f64> = pco_exact::<i64>(rest, n)?
                .into_iter()
                .map(|m| decimal_value(m, scale))
                .collect();
            for (i, bits) in exceptions {
                out[i] = f64::from_bits(bits);
            }
            Ok(out)
        }
        VALUES_FLOAT => {
            let rest = r.bytes(r.remaining())?;
            pco_exact(rest, n)
        }
        _ => Err(DecodeError("unknown value encoding")),
    }
}
