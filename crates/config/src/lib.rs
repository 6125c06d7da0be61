//! Loads Prometheus 3.x `prometheus.yml` files with Prometheus's semantics and defaults.
//!
//! The reference is Prometheus 3.4 (`config/config.go`, `model/relabel`, `discovery/file`,
//! `prometheus/common` durations and HTTP client config). Everything edgeprom does not implement
//! yet is rejected with a "not supported yet by edgeprom" error at its position instead of being
//! ignored, so a config never silently means less than it says.
//!
//! Errors print as `FILE:LINE:COL: FIELD.PATH: message`.

#![warn(missing_docs)]

mod build;
mod bytesize;
mod check;
mod duration;
mod error;
pub mod file_sd;
mod http;
mod raw;
pub mod relabel;
mod remote_write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use bytesize::parse_base2_bytes;
pub use check::{CheckReport, check_config, check_failure_text};
pub use duration::{Duration, DurationError};
pub use error::{ConfigError, ErrorKind, Position, parse_yaml, position_of};
pub use file_sd::FileSdConfig;
pub use http::{Authorization, BasicAuth, HttpClientConfig, TlsConfig, TlsVersion};
pub use relabel::RelabelConfig;
pub use remote_write::{
    MetadataConfig, QueueConfig, RESERVED_HEADERS, RemoteWriteConfig, RemoteWriteMessage,
};

/// A loaded, validated configuration with every default applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `global` section (defaults when absent).
    pub global: GlobalConfig,
    /// Rule files: globs expanded, relative paths resolved against the config file's directory.
    pub rule_files: Vec<PathBuf>,
    /// Scrape configs: those of the file, then those of `scrape_config_files`, each validated
    /// against `global`.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// The `alerting` section: where firing and resolved alerts are sent.
    pub alerting: AlertingConfig,
    /// The `storage` section (only `exemplars` is supported).
    pub storage: StorageConfig,
    /// `remote_write` entries, in file order, with Prometheus's defaults and a unique `name` each.
    pub remote_write: Vec<RemoteWriteConfig>,
    /// The file this was loaded from.
    pub source: PathBuf,
    /// The file's text as read, for `/api/v1/status/config`.
    pub text: String,
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, &e))?;
        Config::parse(&text, path)
    }

    /// Parses `text` as if read from `path`; `path` names errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        build::parse_config(text, path)
    }

    /// The scrape config with this job name.
    pub fn scrape_config(&self, job_name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job_name)
    }
}

/// Size of the exemplar buffer when exemplar storage is enabled and the file does not say
/// (Prometheus's `DefaultExemplarsConfig`).
pub const DEFAULT_MAX_EXEMPLARS: i64 = 100_000;

/// The `storage` section of the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageConfig {
    /// `storage.exemplars`, when the file has it. It only matters with
    /// `--enable-feature=exemplar-storage`.
    pub exemplars: Option<ExemplarsConfig>,
}

impl StorageConfig {
    /// How many exemplars the in-memory buffer holds: the file's `max_exemplars`, else
    /// [`DEFAULT_MAX_EXEMPLARS`]. Zero or less disables storing them, as in Prometheus.
    pub fn max_exemplars(&self) -> i64 {
        self.exemplars
            .as_ref()
            .map_or(DEFAULT_MAX_EXEMPLARS, |e| e.max_exemplars)
    }
}

/// `storage.exemplars`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExemplarsConfig {
    /// Exemplars kept in the single circular buffer; reloadable. An absent field means
    /// [`DEFAULT_MAX_EXEMPLARS`].
    pub max_exemplars: i64,
}

/// The `global` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    /// Default scrape interval; 1m.
    pub scrape_interval: Duration,
    /// Default scrape timeout; 10s, or the interval when that is shorter.
    pub scrape_timeout: Duration,
    /// Default rule evaluation interval; 1m.
    pub evaluation_interval: Duration,
    /// How far into the past rule evaluation is shifted; 0.
    pub rule_query_offset: Duration,
    /// Labels added to series leaving this server; `$VAR`/`${VAR}` expanded from the environment.
    pub external_labels: edgeprom_model::Labels,
    /// Protocols offered in the scrape `Accept` header, most preferred first.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Default uncompressed body size limit in bytes; 0 = none.
    pub body_size_limit: u64,
    /// Default per-scrape sample limit; 0 = none.
    pub sample_limit: u64,
    /// Default per-series label count limit; 0 = none.
    pub label_limit: u64,
    /// Default label name length limit; 0 = none.
    pub label_name_length_limit: u64,
    /// Default label value length limit; 0 = none.
    pub label_value_length_limit: u64,
    /// Default per-job target limit; 0 = none.
    pub target_limit: u64,
    /// Default number of dropped targets kept for the API; 0 = all.
    pub keep_dropped_targets: u64,
}

impl Default for GlobalConfig {
    fn default() -> GlobalConfig {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            external_labels: edgeprom_model::Labels::new(),
            scrape_protocols: ScrapeProtocol::DEFAULT.to_vec(),
            body_size_limit: 0,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
            keep_dropped_targets: 0,
        }
    }
}

/// One `scrape_configs` entry with global defaults applied.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// The job name, also the default `job` label.
    pub job_name: String,
    /// Scrape interval (job's, else global).
    pub scrape_interval: Duration,
    /// Scrape timeout: explicit, else min(global timeout, interval); never above the interval.
    pub scrape_timeout: Duration,
    /// Path scraped; `/metrics`.
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    /// URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep scraped labels on conflict instead of renaming them `exported_*`.
    pub honor_labels: bool,
    /// Use timestamps the target exposes; true.
    pub honor_timestamps: bool,
    /// Write staleness markers for series with explicit timestamps.
    pub track_timestamps_staleness: bool,
    /// `static_configs`, numbered `0`, `1`, ... as their source.
    pub static_configs: Vec<TargetGroup>,
    /// `file_sd_configs`.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Target relabelling.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of scraped series.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Samples per scrape after metric relabelling; 0 = none.
    pub sample_limit: u64,
    /// Labels per series; 0 = none.
    pub label_limit: u64,
    /// Label name length; 0 = none.
    pub label_name_length_limit: u64,
    /// Label value length; 0 = none.
    pub label_value_length_limit: u64,
    /// Uncompressed body size in bytes; 0 = none.
    pub body_size_limit: u64,
    /// Targets after relabelling; 0 = none.
    pub target_limit: u64,
    /// Dropped targets kept for the API; 0 = all.
    pub keep_dropped_targets: u64,
    /// Protocols offered in the `Accept` header, most preferred first.
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Parser to use when the response's Content-Type is missing or unknown.
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    /// Ask for gzip; true.
    pub enable_compression: bool,
    /// HTTP client settings.
    pub http: HttpClientConfig,
}

/// The `alerting` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertingConfig {
    /// `alertmanagers`, in file order.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One `alerting.alertmanagers` entry with Prometheus's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// `http` or `https`; `http`.
    pub scheme: String,
    /// Prefix of the API path (`/` by default): alerts go to `<prefix>/api/v2/alerts`.
    pub path_prefix: String,
    /// Per-request timeout; 10s.
    pub timeout: Duration,
    /// Only `v2` exists in Prometheus 3.
    pub api_version: String,
    /// `host:port` of every Alertmanager of the `static_configs`.
    pub targets: Vec<String>,
}

impl AlertmanagerConfig {
    /// The URL alerts are POSTed to for one target: `scheme://target/<prefix>/api/v2/alerts`, the
    /// path joined as Go's `path.Join` does (no doubled slashes).
    pub fn alerts_url(&self, target: &str) -> String {
        let prefix = self.path_prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{}://{target}/api/{}/alerts", self.scheme, self.api_version)
        } else {
            format!(
                "{}://{target}/{prefix}/api/{}/alerts",
                self.scheme, self.api_version
            )
        }
    }
}

/// A target group: addresses plus labels shared by them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Target addresses (`host:port`), each becoming `__address__`.
    pub targets: Vec<String>,
    /// Labels for every target of the group.
    pub labels: BTreeMap<String, String>,
    /// Identifies the group within its provider: index for static configs, `FILE:INDEX` for files.
    pub source: String,
}

/// A protocol a scrape can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    /// `application/openmetrics-text;version=1.0.0`
    OpenMetricsText1_0_0,
    /// `application/openmetrics-text;version=0.0.1`
    OpenMetricsText0_0_1,
    /// `text/plain;version=1.0.0`
    PrometheusText1_0_0,
    /// `text/plain;version=0.0.4`
    PrometheusText0_0_4,
    /// Delimited protobuf `io.prometheus.client.MetricFamily`.
    PrometheusProto,
}

impl ScrapeProtocol {
    /// Prometheus 3's default order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// Every protocol.
    pub const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusProto,
    ];

    /// Prometheus's configuration name, e.g. `OpenMetricsText1.0.0`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
        }
    }

    /// The media type with parameters, as Prometheus puts it in the `Accept` header.
    pub fn header_value(&self) -> &'static str {
        match self {
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
        }
    }

    /// Parses a configuration name (case-sensitive, as in Prometheus).
    pub fn parse(s: &str) -> Result<ScrapeProtocol, String> {
        ScrapeProtocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let mut names: Vec<&str> = ScrapeProtocol::ALL.iter().map(|p| p.as_str()).collect();
                names.sort_unstable();
                format!(
                    "unknown scrape protocol {s}, supported: [{}]",
                    names.join(" ")
                )
            })
    }
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
