/// The bit pattern Prometheus writes as a sample value to mark a series stale.
///
/// It is a NaN that no arithmetic produces, so a stale marker can be told apart from an exposed `NaN`.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale-marker value.
#[inline]
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the stale marker (and not any other NaN).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample: a millisecond Unix timestamp and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; compare with [`is_stale_nan`] before treating NaN as data.
    pub v: f64,
}

/// A metric family's type, as declared by `# TYPE` in text or OpenMetrics exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// Monotonic counter.
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Classic histogram: `_bucket{le}`, `_sum`, `_count`.
    Histogram,
    /// OpenMetrics gauge histogram: `_bucket{le}`, `_gsum`, `_gcount`.
    GaugeHistogram,
    /// Summary: quantiles, `_sum`, `_count`.
    Summary,
    /// OpenMetrics info metric (`_info` samples with value 1).
    Info,
    /// OpenMetrics state set.
    StateSet,
    /// No type declared, or `untyped`/`unknown`.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API reports for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// Parses a `# TYPE` word; `untyped` (text 0.0.4) and `unknown` (OpenMetrics) both mean [`MetricType::Unknown`].
    pub fn parse(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_distinct_from_ordinary_nan() {
        assert!(is_stale_nan(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
    }

    #[test]
    fn type_words_round_trip() {
        for t in [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Summary,
            MetricType::Info,
            MetricType::StateSet,
            MetricType::Unknown,
        ] {
            assert_eq!(MetricType::parse(t.as_str()), Some(t));
        }
        assert_eq!(MetricType::parse("untyped"), Some(MetricType::Unknown));
        assert_eq!(MetricType::parse("Counter"), None);
    }
}
