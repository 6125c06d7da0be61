//! Go's number formatting (`strconv.FormatFloat` `'g'`/`'e'`/`'f'` and the `fmt` verbs the
//! template functions use), so that `humanize` and `printf` print what Prometheus prints.

/// Decimal digits of `v` (> 0, finite) rounded to `sig` significant digits (`None`: shortest
/// round-trip), trailing zeros removed, and the decimal point position (`0.d1d2… × 10^dp`).
fn digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v),
        None => format!("{v:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while d.len() > 1 && d.ends_with('0') {
        d.pop();
    }
    if d == "0" {
        return (d, 1);
    }
    (d, exp + 1)
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

fn fmt_e(neg: bool, d: &str, dp: i32, prec: usize, out: &mut String) {
    if neg {
        out.push('-');
    }
    let b = d.as_bytes();
    out.push(b[0] as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(b.get(i).map_or('0', |c| *c as char));
        }
    }
    let exp = if d == "0" { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

fn fmt_f(neg: bool, d: &str, dp: i32, prec: usize, out: &mut String) {
    if neg {
        out.push('-');
    }
    let b = d.as_bytes();
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(b.get(i).map_or('0', |c| *c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            let j = dp + i;
            let c = if j < 0 {
                b'0'
            } else {
                *b.get(j as usize).unwrap_or(&b'0')
            };
            out.push(c as char);
        }
    }
}

/// `strconv.FormatFloat(v, 'g', prec, 64)`; `prec` `None` is Go's `-1` (shortest).
pub fn format_g(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    let prec = prec.map(|p| p.max(1));
    let (d, dp) = if a == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(a, prec)
    };
    let nd = d.len() as i32;
    let mut eprec = prec.map_or(6, |p| p as i32);
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    if prec.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    let mut out = String::new();
    if a != 0.0 && (exp < -4 || exp >= eprec) {
        let p = prec.map_or(nd, |p| (p as i32).min(nd));
        fmt_e(neg, &d, dp, (p - 1).max(0) as usize, &mut out);
        return out;
    }
    let p = match prec {
        Some(p) if (p as i32) > dp => nd,
        Some(p) => p as i32,
        None => nd,
    };
    fmt_f(neg, &d, dp, (p - dp).max(0) as usize, &mut out);
    out
}

/// `strconv.FormatFloat(v, 'e', prec, 64)`.
pub fn format_e(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    let (d, dp) = if a == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(a, Some(prec + 1))
    };
    let mut out = String::new();
    fmt_e(neg, &d, dp, prec, &mut out);
    out
}

/// `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest digits that round-trip.
pub fn format_e_shortest(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let (d, dp) = if v == 0.0 {
        ("0".to_string(), 1)
    } else {
        digits(v.abs(), None)
    };
    let mut out = String::new();
    fmt_e(v.is_sign_negative(), &d, dp, d.len() - 1, &mut out);
    out
}

/// `strconv.FormatFloat(v, 'f', prec, 64)`.
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    // Rust keeps the sign of values that round to zero (`-0.0`), as Go does.
    format!("{:.*}", prec, v)
}

/// What Go's `fmt` prints for a float64 with `%v`.
pub fn format_v(v: f64) -> String {
    format_g(v, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_strconv() {
        // Expected strings are what Go (1.19, `fmt`/`strconv`) prints for the same calls.
        let g4 = [
            (1.0, "1"),
            (1234.5678, "1235"),
            (12345.678, "1.235e+04"),
            (0.000123456, "0.0001235"),
            (0.0000123456, "1.235e-05"),
            (96.54, "96.54"),
            (100.0, "100"),
            (0.5, "0.5"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (999.96, "1000"),
            (9999.6, "1e+04"),
        ];
        for (v, want) in g4 {
            assert_eq!(format_g(v, Some(4)), want, "%.4g of {v}");
        }
        let shortest = [
            (96.54, "96.54"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (3.0, "3"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ];
        for (v, want) in shortest {
            assert_eq!(format_v(v), want, "%v of {v}");
        }
        assert_eq!(format_f(96.54, 1), "96.5");
        assert_eq!(format_f(-0.01, 1), "-0.0");
        assert_eq!(format_e(1234.5, 2), "1.23e+03");
        assert_eq!(format_e_shortest(96.54), "9.654e+01");
        assert_eq!(format_e_shortest(1.0), "1e+00");
        assert_eq!(format_e_shortest(0.0), "0e+00");
    }
}
