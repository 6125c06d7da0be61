//! Command-line flags, spelled as Prometheus spells them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A single-binary, Prometheus-compatible scraper and time-series store for the edge.
#[derive(Debug, Parser)]
#[command(
    name = "edgeprom",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A tool to run instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The server's flags.
    #[command(flatten)]
    pub server: ServerFlags,
}

/// Flags of the server (no subcommand).
#[derive(Debug, clap::Args)]
pub struct ServerFlags {
    /// Prometheus configuration file path.
    #[arg(long = "config.file", default_value = "prometheus.yml")]
    pub config_file: PathBuf,

    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub storage_path: PathBuf,

    /// Address to listen on for the web interface and API.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,

    /// How long to retain samples in storage (Prometheus duration, e.g. 15d).
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    pub retention_time: String,

    /// Maximum number of bytes the data directory may use (blocks, WAL, head chunks), e.g. 512MB;
    /// the oldest blocks are deleted first. 0 disables.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    pub retention_size: String,

    /// Time range of the blocks the head is compacted into.
    #[arg(
        long = "storage.tsdb.min-block-duration",
        default_value = "2h",
        hide = true
    )]
    pub min_block_duration: String,

    /// Enable shutdown and reload via HTTP request (POST /-/quit, POST /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,

    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,

    /// Comma-separated feature flags to enable; known: promql-experimental-functions.
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,

    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub query_lookback_delta: String,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,

    /// Accepted for compatibility with Prometheus command lines; edgeprom has no console templates.
    #[arg(long = "web.console.templates")]
    pub console_templates: Option<String>,

    /// Accepted for compatibility with Prometheus command lines; edgeprom has no console libraries.
    #[arg(long = "web.console.libraries")]
    pub console_libraries: Option<String>,
}

impl ServerFlags {
    /// Every flag and its value, named as on the command line, for `/api/v1/status/flags`.
    pub fn to_map(&self) -> std::collections::BTreeMap<String, String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            ("config.file", self.config_file.display().to_string()),
            ("storage.tsdb.path", self.storage_path.display().to_string()),
            ("web.listen-address", self.listen_address.clone()),
            ("storage.tsdb.retention.time", self.retention_time.clone()),
            ("storage.tsdb.retention.size", self.retention_size.clone()),
            (
                "storage.tsdb.min-block-duration",
                self.min_block_duration.clone(),
            ),
            ("web.enable-lifecycle", self.enable_lifecycle.to_string()),
            ("web.enable-admin-api", self.enable_admin_api.to_string()),
            ("query.max-samples", self.query_max_samples.to_string()),
            ("query.timeout", self.query_timeout.clone()),
            (
                "query.max-concurrency",
                self.query_max_concurrency.to_string(),
            ),
            ("query.lookback-delta", self.query_lookback_delta.clone()),
            ("enable-feature", self.enable_feature.join(",")),
            (
                "log.level",
                format!("{:?}", self.log_level).to_ascii_lowercase(),
            ),
            (
                "log.format",
                format!("{:?}", self.log_format).to_ascii_lowercase(),
            ),
            ("web.console.templates", opt(&self.console_templates)),
            ("web.console.libraries", opt(&self.console_libraries)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Log severities, as Prometheus names them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-scrape failures.
    Debug,
    /// Normal operation.
    Info,
    /// Something is wrong but edgeprom keeps going.
    Warn,
    /// Something failed.
    Error,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, Prometheus's default.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check files, like promtool check.
    Check {
        /// What to check.
        #[command(subcommand)]
        what: Check,
    },
}

/// What `edgeprom check` checks.
#[derive(Debug, Subcommand)]
pub enum Check {
    /// Check that configuration files are valid, like `promtool check config`.
    Config {
        /// The configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}
