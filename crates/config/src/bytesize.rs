//! Byte sizes as Prometheus's `body_size_limit` takes them (`alecthomas/units.Base2Bytes`):
//! `B`, and `K`/`M`/`G`/`T`/`P`/`E` followed by `iB` or `B`, all powers of 1024 (`10MB` is
//! 10 MiB; `kB` is rejected). Fractions and sums are allowed: `1.5GiB`, `1GiB512MiB`.

use serde::de::{self, Deserializer, Visitor};

/// Parses a Base2Bytes string. Bare integers are accepted as a byte count (YAML integers reach
/// Prometheus's int64-backed type directly).
pub fn parse_base2_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("units: invalid {s}");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        // Deviation kept deliberately small: a unit-less number means bytes.
        return rest.parse::<u64>().map_err(|_| err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(err());
        }
        let int_end = b
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(b.len());
        let mut value = if int_end > 0 {
            rest[..int_end].parse::<f64>().map_err(|_| err())?
        } else {
            0.0
        };
        let pre = int_end > 0;
        rest = &rest[int_end..];
        let mut post = false;
        if let Some(r) = rest.strip_prefix('.') {
            let frac_end = r
                .bytes()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(r.len());
            if frac_end > 0 {
                let frac: f64 = format!("0.{}", &r[..frac_end]).parse().map_err(|_| err())?;
                value += frac;
                post = true;
            }
            rest = &r[frac_end..];
        }
        if !pre && !post {
            return Err(err());
        }
        let unit_end = rest
            .bytes()
            .position(|c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult =
            unit_multiplier(unit).ok_or_else(|| format!("units: unknown unit {unit} in {s}"))?;
        total += value * mult as f64;
    }
    if neg {
        // A negative limit has no meaning for a byte cap; Prometheus would store a negative
        // int64 and treat it as "no limit" only by accident.
        return Err(format!("{s}: negative byte size"));
    }
    if total >= 18_446_744_073_709_551_616.0 {
        return Err("units: overflow parsing unit".to_string());
    }
    Ok(total as u64)
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    const K: u64 = 1024;
    let prefix = unit.strip_suffix("iB").or_else(|| unit.strip_suffix('B'))?;
    Some(match prefix {
        "" if unit == "B" => 1,
        "K" => K,
        "M" => K.pow(2),
        "G" => K.pow(3),
        "T" => K.pow(4),
        "P" => K.pow(5),
        "E" => K.pow(6),
        _ => return None,
    })
}

/// A byte size as read from YAML: integer or unit string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte size such as 10MB, 1GiB or 0")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v}: negative byte size")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_base2_bytes(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_base2_bytes as p;

    #[test]
    fn base2_units() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("100B"), Ok(100));
        assert_eq!(p("1KB"), Ok(1024));
        assert_eq!(p("1KiB"), Ok(1024));
        assert_eq!(p("10MB"), Ok(10 << 20));
        assert_eq!(p("1GiB"), Ok(1 << 30));
        assert_eq!(p("1.5GiB"), Ok(3 << 29));
        assert_eq!(p("1GiB512MiB"), Ok((1 << 30) + (512 << 20)));
        assert_eq!(p("2048"), Ok(2048));
        assert!(p("1kB").is_err());
        assert!(p("10 MB").is_err());
        assert!(p("MB").is_err());
        assert!(p("").is_err());
        assert!(p("1XB").is_err());
    }
}
