//! Prometheus durations (`prometheus/common` `model.Duration`): `1y2w3d4h5m6s7ms`, units in that
//! fixed order, integer amounts only, a bare `0` allowed, a year is 365 days and a week 7.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer};

const MS: u64 = 1;
const SECOND: u64 = 1000 * MS;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const YEAR: u64 = 365 * DAY;

/// Units from biggest to smallest with their length in milliseconds; the position in this table
/// is what enforces Prometheus's "biggest unit first" order (`30m1h` is rejected, because `1m1d`
/// would otherwise read as one month and a day to a human).
const UNITS: [(&str, u64); 7] = [
    ("y", YEAR),
    ("w", WEEK),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", MS),
];

/// Go's `time.Duration` is an `int64` of nanoseconds, so Prometheus rejects anything above
/// ~292 years; keeping the same ceiling keeps "valid here" equal to "valid in Prometheus".
const MAX_NANOS: u128 = (1u128 << 63) - 1;

/// A Prometheus duration, held with millisecond precision (the grammar cannot express less).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

/// Why a duration string was rejected; the text matches Prometheus's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The empty string.
    #[error("empty duration string")]
    Empty,
    /// Anything that is not `<int><unit>` repeated with units in decreasing order.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// A unit outside `y w d h m s ms`.
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// Longer than Go's `time.Duration` can hold.
    #[error("duration out of range")]
    OutOfRange,
}

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration { millis: 0 };

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            millis: secs * SECOND,
        }
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration { millis }
    }

    /// Converts a std duration, truncating below one millisecond (the grammar's resolution).
    pub fn from_std(d: std::time::Duration) -> Duration {
        Duration {
            millis: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The duration as a std duration.
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }

    /// Whole milliseconds.
    pub fn as_millis(&self) -> u64 {
        self.millis
    }

    /// Whether this is zero (Prometheus uses zero as "unset" in many places).
    pub fn is_zero(&self) -> bool {
        self.millis == 0
    }

    /// Parses Prometheus's grammar exactly as `model.ParseDuration` does.
    pub fn parse(s: &str) -> Result<Duration, DurationError> {
        match s {
            "0" => return Ok(Duration::ZERO),
            "" => return Err(DurationError::Empty),
            _ => {}
        }
        let invalid = || DurationError::Invalid(s.to_string());
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut nanos: u128 = 0;
        // Index into UNITS of the last unit seen; the next must be strictly smaller.
        let mut last: Option<usize> = None;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(invalid());
            }
            // Go parses with ParseUint(.., 64): more than u64 is "not valid", not "out of range".
            let amount: u64 = s[start..i].parse().map_err(|_| invalid())?;
            let unit_start = i;
            while i < bytes.len() && !bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == unit_start {
                return Err(invalid());
            }
            let unit = &s[unit_start..i];
            let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_string(),
                    input: s.to_string(),
                });
            };
            if last.is_some_and(|l| pos <= l) {
                return Err(invalid());
            }
            last = Some(pos);
            let unit_nanos = u128::from(UNITS[pos].1) * 1_000_000;
            if u128::from(amount) > (1u128 << 63) / unit_nanos {
                return Err(DurationError::OutOfRange);
            }
            nanos += u128::from(amount) * unit_nanos;
            if nanos > MAX_NANOS {
                return Err(DurationError::OutOfRange);
            }
        }
        Ok(Duration {
            millis: u64::try_from(nanos / 1_000_000).map_err(|_| DurationError::OutOfRange)?,
        })
    }
}

/// Prints Prometheus's canonical form: years and weeks only when they divide exactly (`90d`, not
/// `12w6d`), then d h m s ms, `0s` for zero.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.millis;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in UNITS {
            let exact_only = unit == "y" || unit == "w";
            if exact_only && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.as_std()
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Prometheus unmarshals into a Go string first, so a plain YAML `0` or `10` arrives as
        // text and goes through the same grammar ("10" then fails for lack of a unit).
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(de::Error::custom)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prometheus_grammar() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("0s", 0),
            ("1s", 1000),
            ("500ms", 500),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("2h0m", 7_200_000),
            ("90s", 90_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            (
                "1y2w3d4h5m6s7ms",
                31_536_000_000 + 2 * WEEK + 3 * DAY + 4 * HOUR + 5 * MINUTE + 6007,
            ),
            ("0005m", 300_000),
        ];
        for (s, ms) in cases {
            assert_eq!(Duration::parse(s), Ok(Duration::from_millis(*ms)), "{s}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for s in [
            "1.5h", "30m1h", "1h 30m", "1M", "5min", "-1s", "1", "10", "s", "h1", "1s1s", "1ms1s",
            " 1s", "1s ", "1e3s",
        ] {
            assert!(Duration::parse(s).is_err(), "{s} should be rejected");
        }
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        // Go's scanner reads "1" then the unit "." — hence Prometheus's odd wording here.
        assert_eq!(
            Duration::parse("1.5h").map_err(|e| e.to_string()),
            Err("unknown unit \".\" in duration \"1.5h\"".to_string())
        );
        assert_eq!(
            Duration::parse("30m1h").map_err(|e| e.to_string()),
            Err("not a valid duration string: \"30m1h\"".to_string())
        );
        assert_eq!(
            Duration::parse("5min").map_err(|e| e.to_string()),
            Err("unknown unit \"min\" in duration \"5min\"".to_string())
        );
        assert_eq!(Duration::parse("300y"), Err(DurationError::OutOfRange));
        assert!(Duration::parse("292y").is_ok());
    }

    #[test]
    fn displays_like_prometheus() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1000, "1s"),
            (5_400_000, "1h30m"),
            (90 * DAY, "90d"),
            (14 * DAY, "2w"),
            (YEAR, "1y"),
            (YEAR + DAY, "366d"),
            (1500, "1s500ms"),
            (DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND + 5, "1d2h3m4s5ms"),
        ];
        for (ms, s) in cases {
            assert_eq!(Duration::from_millis(*ms).to_string(), *s);
            assert_eq!(Duration::parse(s), Ok(Duration::from_millis(*ms)));
        }
    }

    #[test]
    fn std_round_trip() {
        let d = Duration::from_std(std::time::Duration::from_micros(1_500_700));
        assert_eq!(d.as_millis(), 1500);
        assert_eq!(d.as_std(), std::time::Duration::from_millis(1500));
    }
}
