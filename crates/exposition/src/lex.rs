//! Byte-level building blocks shared by both formats: character classes, quoted-string scanning,
//! unescaping, and the float syntax Prometheus accepts.

use std::borrow::Cow;

/// Character-class bits, looked up in [`CLASS`] so the hot loops do one load per byte instead of
/// a chain of range comparisons.
const LNAME_START: u8 = 1; // [a-zA-Z_]
const LNAME_CONT: u8 = 2; // [a-zA-Z0-9_]
const MNAME_START: u8 = 4; // [a-zA-Z_:]
const MNAME_CONT: u8 = 8; // [a-zA-Z0-9_:]

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha {
            v |= LNAME_START | LNAME_CONT | MNAME_START | MNAME_CONT;
        }
        if digit {
            v |= LNAME_CONT | MNAME_CONT;
        }
        if b == b':' {
            v |= MNAME_START | MNAME_CONT;
        }
        t[c] = v;
        c += 1;
    }
    t
};

#[inline]
pub(crate) fn is_mname_start(b: u8) -> bool {
    CLASS[b as usize] & MNAME_START != 0
}

#[inline]
pub(crate) fn is_lname_start(b: u8) -> bool {
    CLASS[b as usize] & LNAME_START != 0
}

/// End of a metric-name identifier starting at `i` (which must hold a start character).
#[inline]
pub(crate) fn scan_mname(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && CLASS[b[i] as usize] & MNAME_CONT != 0 {
        i += 1;
    }
    i
}

/// End of a label-name identifier starting at `i` (which must hold a start character).
#[inline]
pub(crate) fn scan_lname(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && CLASS[b[i] as usize] & LNAME_CONT != 0 {
        i += 1;
    }
    i
}

/// Skips spaces and tabs, the only intra-line whitespace the text format knows.
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Why a quoted string did not close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuoteError {
    /// Input ended inside the string.
    Unterminated,
    /// A raw line break where the format forbids one (or after a backslash, which the
    /// Prometheus lexers' `\\.` never matches).
    Newline,
}

/// Scans a quoted string whose opening `"` is at `i`. Returns the index just past the closing
/// quote and whether a backslash occurred (so callers know if unescaping can allocate).
///
/// `allow_newline` mirrors the lexers: the text format and quoted names accept raw line breaks
/// inside quotes, OpenMetrics label values do not.
#[inline]
pub(crate) fn scan_quoted(
    b: &[u8],
    i: usize,
    allow_newline: bool,
) -> Result<(usize, bool), QuoteError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let rest = b.get(j..).unwrap_or(&[]);
        let found = if allow_newline {
            memchr::memchr2(b'"', b'\\', rest)
        } else {
            memchr::memchr3(b'"', b'\\', b'\n', rest)
        };
        let k = match found {
            Some(rel) => j + rel,
            None => return Err(QuoteError::Unterminated),
        };
        match b[k] {
            b'"' => return Ok((k + 1, escaped)),
            b'\\' => match b.get(k + 1) {
                None => return Err(QuoteError::Unterminated),
                Some(b'\n') => return Err(QuoteError::Newline),
                Some(_) => {
                    escaped = true;
                    j = k + 2;
                }
            },
            _ => return Err(QuoteError::Newline),
        }
    }
}

/// Undoes label-value escaping (`\\`, `\"`, `\n`); any other backslash sequence stays verbatim,
/// as Prometheus's replacer leaves it. Only allocates when there is a backslash.
pub(crate) fn unescape_lvalue(s: &str) -> Cow<'_, str> {
    unescape(s, true)
}

/// Undoes text-format HELP escaping, which knows only `\\` and `\n` (a `\"` stays as is).
pub(crate) fn unescape_help(s: &str) -> Cow<'_, str> {
    unescape(s, false)
}

fn unescape(s: &str, quote: bool) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let mut lookahead = chars.clone();
        match lookahead.next() {
            Some('\\') => {
                out.push('\\');
                chars = lookahead;
            }
            Some('n') => {
                out.push('\n');
                chars = lookahead;
            }
            Some('"') if quote => {
                out.push('"');
                chars = lookahead;
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// The NaN bit pattern Prometheus stores for an exposed `NaN` (`value.NormalNaN`), distinct from
/// both the stale marker and Rust's default NaN, so stored values match Prometheus bit for bit.
pub(crate) const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Why a float did not parse; the message mirrors the Go error Prometheus would report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatError {
    /// `p`, `P` or `_`: Go 1.13+ syntax Prometheus refuses.
    Unsupported,
    /// Not a float at all.
    Syntax,
    /// Finite text too large for f64 (Go's `ErrRange`).
    Range,
}

/// Parses a float the way Prometheus does: Go's `strconv.ParseFloat` restricted to pre-1.13
/// syntax. Signed `inf`/`infinity` in any case, unsigned `nan` in any case, decimal with optional
/// exponent; overflow is an error, underflow rounds to zero.
#[inline]
pub(crate) fn parse_go_float(s: &str) -> Result<f64, FloatError> {
    let b = s.as_bytes();
    // Fast path: short unsigned integers are the bulk of counters and buckets, and below 2^53
    // the conversion is exact.
    if !b.is_empty() && b.len() <= 15 {
        let mut v: u64 = 0;
        let mut all_digits = true;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                all_digits = false;
                break;
            }
            v = v * 10 + u64::from(d);
        }
        if all_digits {
            return Ok(v as f64);
        }
    }
    parse_go_float_slow(b, s)
}

#[cold]
fn parse_go_float_slow(b: &[u8], s: &str) -> Result<f64, FloatError> {
    if b.iter().any(|&c| matches!(c, b'p' | b'P' | b'_')) {
        return Err(FloatError::Unsupported);
    }
    let (neg, body) = match b.first() {
        Some(b'+') => (false, &b[1..]),
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let signed = body.len() != b.len();
    // Rust's parser accepts spellings Go does not (signed NaN), so specials are decided here and
    // never reach it.
    if body.first().is_some_and(|c| c.is_ascii_alphabetic()) {
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Ok(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        if !signed && body.eq_ignore_ascii_case(b"nan") {
            return Ok(f64::from_bits(NORMAL_NAN_BITS));
        }
        return Err(FloatError::Syntax);
    }
    // What remains must be Go decimal syntax; Rust's grammar for it is the same
    // (digits, optional fraction, optional exponent, at least one mantissa digit).
    if !body
        .iter()
        .all(|&c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(FloatError::Syntax);
    }
    let v: f64 = s.parse().map_err(|_| FloatError::Syntax)?;
    if v.is_infinite() {
        return Err(FloatError::Range);
    }
    Ok(v)
}

/// Describes a float error as Go would, for error messages.
pub(crate) fn float_error_message(e: FloatError, text: &str) -> String {
    match e {
        FloatError::Unsupported => "unsupported character in float".to_string(),
        FloatError::Syntax => format!("strconv.ParseFloat: parsing {text:?}: invalid syntax"),
        FloatError::Range => format!("strconv.ParseFloat: parsing {text:?}: value out of range"),
    }
}

/// A fixed stack buffer for float formatting, so checking whether a label value is already
/// canonical costs no allocation. 48 bytes exceeds the longest form (`-1.2345678901234567e-308`).
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> StackBuf {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }
    fn push_str(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.push(b);
        }
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.push_str(s);
        Ok(())
    }
}

/// Formats a float like Prometheus's `labels.FormatOpenMetricsFloat`: Go's shortest `%g`, with
/// `.0` appended when the result has neither `.` nor `e`. Prometheus 3 rewrites `le` and
/// `quantile` label values this way, so `le="1"` is stored as `le="1.0"`.
#[cfg(test)]
pub(crate) fn format_om_float(f: f64) -> String {
    let mut out = StackBuf::new();
    write_om_float(f, &mut out);
    out.as_str().to_string()
}

fn write_om_float(f: f64, out: &mut StackBuf) {
    use std::fmt::Write;
    if f == 1.0 {
        return out.push_str("1.0");
    }
    if f == 0.0 {
        return out.push_str("0.0");
    }
    if f == -1.0 {
        return out.push_str("-1.0");
    }
    if f.is_nan() {
        return out.push_str("NaN");
    }
    if f.is_infinite() {
        return out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
    }
    // Rust's `{:e}` yields the same shortest round-trip digits Go uses; only the layout differs.
    let mut sci = StackBuf::new();
    let _ = write!(sci, "{:e}", f.abs());
    let sci = sci.as_str();
    let (mant, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = StackBuf::new();
    for b in mant.bytes().filter(|b| *b != b'.') {
        digits.push(b);
    }
    let digits = digits.as_str();
    if f < 0.0 {
        out.push(b'-');
    }
    // Go's shortest %g uses exponent form when the exponent is below -4 or at least 6 (the
    // precision it assumes for shortest output), with a sign and at least two exponent digits.
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push(b'.');
            out.push_str(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        let _ = write!(out, "{e}");
    } else {
        let dp = exp + 1; // digits before the decimal point
        if dp <= 0 {
            out.push_str("0.");
            for _ in 0..(-dp) {
                out.push(b'0');
            }
            out.push_str(digits);
        } else {
            let dp = dp as usize;
            if digits.len() <= dp {
                out.push_str(digits);
                for _ in digits.len()..dp {
                    out.push(b'0');
                }
            } else {
                out.push_str(&digits[..dp]);
                out.push(b'.');
                out.push_str(&digits[dp..]);
            }
        }
    }
    if !out.as_str().contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// Rewrites a label value to Prometheus 3's canonical float form if it parses as a float;
/// allocates only when the text actually changes.
pub(crate) fn normalize_float_label(v: Cow<'_, str>) -> Cow<'_, str> {
    // Go's ParseFloat here is the unrestricted one, but hex floats are vanishingly rare in
    // `le`/`quantile`; the restricted parser covers every decimal form.
    let Ok(f) = parse_go_float(&v) else {
        return v;
    };
    let mut canon = StackBuf::new();
    write_om_float(f, &mut canon);
    if canon.as_str() == v {
        v
    } else {
        Cow::Owned(canon.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_forms() {
        let ok = |s: &str| parse_go_float(s).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        assert_eq!(ok("0"), 0.0);
        assert_eq!(ok("299"), 299.0);
        assert_eq!(ok("-1.5"), -1.5);
        assert_eq!(ok("+.5"), 0.5);
        assert_eq!(ok("1."), 1.0);
        assert_eq!(ok("4.9351e-05"), 4.9351e-05);
        assert_eq!(ok("1E3"), 1000.0);
        assert_eq!(ok("+Inf"), f64::INFINITY);
        assert_eq!(ok("-Inf"), f64::NEG_INFINITY);
        assert_eq!(ok("Inf"), f64::INFINITY);
        assert_eq!(ok("infinity"), f64::INFINITY);
        assert_eq!(ok("-INFINITY"), f64::NEG_INFINITY);
        assert_eq!(ok("NaN").to_bits(), NORMAL_NAN_BITS);
        assert_eq!(ok("nan").to_bits(), NORMAL_NAN_BITS);
        assert_eq!(ok("1e-400"), 0.0);
        assert_eq!(ok("123456789012345678901234567890"), 1.2345678901234568e29);
        for bad in [
            "", "+", "-", ".", "e5", "1e", "+NaN", "-nan", "true", "1_2", "0x1p-3", "0x1P-3",
            "0x10", "1e400", "-1e400", "1 2", "infinit", "Infx", "1,5",
        ] {
            assert!(parse_go_float(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(parse_go_float("1_2"), Err(FloatError::Unsupported));
        assert_eq!(parse_go_float("1e400"), Err(FloatError::Range));
    }

    #[test]
    fn om_float_format_matches_go() {
        let cases = [
            (0.0, "0.0"),
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (10.0, "10.0"),
            (0.25, "0.25"),
            (100000.0, "100000.0"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (4.9351e-05, "4.9351e-05"),
            (1e21, "1e+21"),
            (1.5e-300, "1.5e-300"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (f, want) in cases {
            assert_eq!(format_om_float(f), want, "{f}");
        }
    }

    #[test]
    fn unescaping() {
        assert!(matches!(unescape_lvalue("plain"), Cow::Borrowed("plain")));
        assert_eq!(unescape_lvalue(r#"a\"b\\c\nd\xe"#), "a\"b\\c\nd\\xe");
        assert_eq!(unescape_lvalue(r"\\n"), "\\n");
        assert_eq!(unescape_help(r#"a\"b\\c\nd"#), "a\\\"b\\c\nd");
    }

    #[test]
    fn quoted_scanning() {
        assert_eq!(scan_quoted(br#""abc" x"#, 0, false), Ok((5, false)));
        assert_eq!(scan_quoted(br#""a\"c" x"#, 0, false), Ok((6, true)));
        assert_eq!(scan_quoted(b"\"a\nb\"", 0, false), Err(QuoteError::Newline));
        assert_eq!(scan_quoted(b"\"a\nb\"", 0, true), Ok((5, false)));
        assert_eq!(scan_quoted(b"\"ab", 0, true), Err(QuoteError::Unterminated));
        assert_eq!(
            scan_quoted(b"\"a\\", 0, true),
            Err(QuoteError::Unterminated)
        );
    }
}
