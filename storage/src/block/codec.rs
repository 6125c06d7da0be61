//! Sample encoding inside a block: per-series streams (timestamps as delta-of-delta, values as
//! decimal mantissas or XOR'd floats), gathered column-wise into groups that are compressed with
//! zstd as one frame. The byte layout is in `storage/FORMAT-block.md`, section "Sample groups".

/// Exact powers of ten: every one up to 10^22 is representable in an f64, so dividing an exact
/// mantissa by one is a single correctly rounded operation — the same one a decimal parser does.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Largest decimal exponent tried; beyond 15 digits an f64 carries no exact decimal anyway.
const MAX_SCALE: u8 = 15;

/// Mantissas stay below 2^53 so that converting them to f64 is exact.
const MANTISSA_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Value stream kinds.
pub(crate) const KIND_DECIMAL_DELTA: u8 = 1;
pub(crate) const KIND_DECIMAL_DOD: u8 = 2;
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

fn uvarint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

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

pub(crate) fn decode_timestamps(r: &mut Reader<'_>, n: usize) -> Result<Vec<i64>, DecodeError> {
    // Every timestamp takes at least one byte, which bounds the allocation by the input.
    let mut out = Vec::with_capacity(n.min(r.remaining()));
    let mut prev = 0i64;
    let mut delta = 0i64;
    for i in 0..n {
        let x = r.varint()?;
        let t = match i {
            0 => x,
            1 => {
                delta = x;
                prev.wrapping_add(delta)
            }
            _ => {
                delta = delta.wrapping_add(x);
                prev.wrapping_add(delta)
            }
        };
        out.push(t);
        prev = t;
    }
    Ok(out)
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

/// How a value stream is chosen, for measurements of the alternatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueMode {
    /// Decimal mantissas when exact (delta or dod, whichever is smaller), XOR otherwise.
    Auto,
    /// XOR'd float bits only, as the baseline.
    XorOnly,
}

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
                if m.abs() >= MANTISSA_LIMIT || decimal_value(m as i64, scale).to_bits() != v.to_bits()
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
    out.push(if dod { KIND_DECIMAL_DOD } else { KIND_DECIMAL_DELTA });
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

pub(crate) fn decode_values(r: &mut Reader<'_>, n: usize) -> Result<Vec<f64>, DecodeError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let kind = r.u8()?;
    match kind {
        KIND_XOR => {
            let planes = r.bytes(n.checked_mul(8).ok_or(DecodeError("too many values"))?)?;
            let mut prev = 0u64;
            Ok((0..n)
                .map(|i| {
                    let mut x = 0u64;
                    for byte in 0..8 {
                        x = (x << 8) | u64::from(planes[byte * n + i]);
                    }
                    prev ^= x;
                    f64::from_bits(prev)
                })
                .collect())
        }
        KIND_DECIMAL_DELTA | KIND_DECIMAL_DOD => {
            let scale = r.u8()?;
            if scale > MAX_SCALE {
                return Err(DecodeError("decimal scale out of range"));
            }
            let num_exc = r.len(n)?;
            let mut exceptions = Vec::with_capacity(num_exc);
            let mut idx = 0usize;
            for _ in 0..num_exc {
                idx = idx
                    .checked_add(r.len(n)?)
                    .filter(|&i| i < n)
                    .ok_or(DecodeError("exception index out of range"))?;
                exceptions.push((idx, r.u64()?));
            }
            let mut out = Vec::with_capacity(n.min(r.remaining()));
            let (mut m, mut d) = (0i64, 0i64);
            for i in 0..n {
                let x = r.varint()?;
                if i == 0 {
                    m = x;
                } else {
                    d = if kind == KIND_DECIMAL_DOD {
                        d.wrapping_add(x)
                    } else {
                        x
                    };
                    m = m.wrapping_add(d);
                }
                out.push(decimal_value(m, scale));
            }
            for (i, bits) in exceptions {
                out[i] = f64::from_bits(bits);
            }
            Ok(out)
        }
        _ => Err(DecodeError("unknown value encoding")),
    }
}

/// Collects the streams of consecutive series and turns them into one uncompressed group.
#[derive(Default)]
pub(crate) struct GroupBuilder {
    lens: Vec<(usize, usize)>,
    ts: Vec<u8>,
    vals: Vec<u8>,
}

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

/// Decodes the `n` samples of the series in `slot` of an uncompressed group.
pub(crate) fn decode_series(
    raw: &[u8],
    slot: usize,
    n: usize,
) -> Result<Vec<(i64, f64)>, DecodeError> {
    let mut r = Reader::new(raw);
    let count = r.len(raw.len())?;
    if slot >= count {
        return Err(DecodeError("series slot past the group's series count"));
    }
    // Saturating: corrupt lengths then fail the range checks below instead of wrapping.
    let (mut ts_off, mut val_off, mut ts_total) = (0usize, 0usize, 0usize);
    let mut mine = (0usize, 0usize);
    for i in 0..count {
        let t = r.len(raw.len())?;
        let v = r.len(raw.len())?;
        if i < slot {
            ts_off = ts_off.saturating_add(t);
            val_off = val_off.saturating_add(v);
        } else if i == slot {
            mine = (t, v);
        }
        ts_total = ts_total.saturating_add(t);
    }
    let ts_start = r.pos().saturating_add(ts_off);
    let val_start = r.pos().saturating_add(ts_total).saturating_add(val_off);
    let ts_bytes = raw
        .get(ts_start..ts_start.saturating_add(mine.0))
        .ok_or(DecodeError("timestamp stream past the group's end"))?;
    let val_bytes = raw
        .get(val_start..val_start.saturating_add(mine.1))
        .ok_or(DecodeError("value stream past the group's end"))?;
    let ts = decode_timestamps(&mut Reader::new(ts_bytes), n)?;
    let vs = decode_values(&mut Reader::new(val_bytes), n)?;
    Ok(ts.into_iter().zip(vs).collect())
}
