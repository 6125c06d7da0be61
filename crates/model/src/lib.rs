//! The data model every edgeprom crate speaks: label sets, samples, metric types, the stale-marker
//! NaN, and the [`Appender`] seam through which scraped samples reach storage.
//!
//! Scrape only sees an [`Appendable`]; the storage engine, tests and (later) remote-write fan-out plug
//! in behind it, the way Prometheus's `storage/interface.go` separates its packages.

mod appender;
pub mod goregex;
mod labels;
pub mod rules;
mod value;

pub use appender::{AppendError, Appendable, Appender, SeriesRef};
pub use labels::{Label, Labels, LabelsBuilder};
pub use value::{MetricType, STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};

/// Reserved label names with a meaning across Prometheus, spelled once.
pub mod names {
    /// The metric name label.
    pub const METRIC_NAME: &str = "__name__";
    /// The job a target belongs to.
    pub const JOB: &str = "job";
    /// The target's instance, `host:port` unless relabelled.
    pub const INSTANCE: &str = "instance";
    /// The target's address before relabelling turns it into `instance`.
    pub const ADDRESS: &str = "__address__";
    /// The target's URL scheme.
    pub const SCHEME: &str = "__scheme__";
    /// The target's metrics path.
    pub const METRICS_PATH: &str = "__metrics_path__";
    /// The target's scrape interval, settable by relabelling.
    pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
    /// The target's scrape timeout, settable by relabelling.
    pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
    /// Prefix of labels that become URL query parameters.
    pub const PARAM_PREFIX: &str = "__param_";
    /// Prefix of labels removed after target relabelling.
    pub const RESERVED_PREFIX: &str = "__";
    /// Prefix of labels meant only for relabelling, never stored.
    pub const META_PREFIX: &str = "__meta_";
    /// Prefix of temporary labels, removed after target relabelling.
    pub const TMP_PREFIX: &str = "__tmp_";
    /// Prefix given to a scraped label that collides with a target label when `honor_labels` is off.
    pub const EXPORTED_PREFIX: &str = "exported_";
    /// Histogram bucket upper bound.
    pub const BUCKET: &str = "le";
    /// Summary quantile.
    pub const QUANTILE: &str = "quantile";
}
