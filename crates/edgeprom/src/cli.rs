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
    /// Grafana dashboards (JSON files and Kubernetes ConfigMaps holding them) listed and rendered
    /// by the web UI's /dashboards page. Default: the platform's dashboards built into the binary.
    #[arg(long = "web.dashboards.dir", value_name = "DIR")]
    pub dashboards_dir: Option<PathBuf>,

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

    /// The URL under which edgeprom is reachable from outside (e.g. behind a reverse proxy),
    /// used for links back to it such as targets' `globalUrl`. If it has a path, every endpoint
    /// is served under that path. Default: `http://<host name>:<listen port>/`.
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,

    /// Prefix for the routes of every web endpoint (API, /metrics, /federate, /-/…). Defaults to
    /// the path of --web.external-url.
    #[arg(long = "web.route-prefix", value_name = "PATH")]
    pub route_prefix: Option<String>,

    /// Path to a web configuration file (Prometheus format) enabling TLS and/or basic
    /// authentication for every endpoint; without it the server speaks plain HTTP, open to all.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,

    /// Enable shutdown and reload via HTTP request (POST /-/quit, POST /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// Accept Remote-Write 1.0 and 2.0 requests on POST /api/v1/write, so that other servers
    /// (edge nodes, Prometheus) can push samples into this one.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,

    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// Maximum number of samples all queries being evaluated at once (API queries and rule
    /// evaluations) may hold together; a query that would pass it fails with an execution error.
    /// edgeprom-specific: Prometheus has no such flag. Default: a quarter of physical memory at
    /// 16 bytes per sample, never below --query.max-samples.
    #[arg(long = "query.max-samples-total")]
    pub query_max_samples_total: Option<usize>,

    /// Longest query text, in bytes, accepted by the query endpoints, `match[]` and rules;
    /// longer ones are refused with bad_data before parsing.
    #[arg(long = "query.max-length", default_value_t = 1 << 20)]
    pub query_max_length: usize,

    /// Deepest expression accepted, bounded from the text (nested brackets plus operators plus
    /// ranges); deeper queries are refused with bad_data before parsing, because parsing and
    /// evaluation recurse once per level and a stack overflow would abort the server.
    #[arg(long = "query.max-expression-depth", default_value_t = 1000)]
    pub query_max_expression_depth: usize,

    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,

    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,

    /// Comma-separated feature flags to enable; known: promql-experimental-functions,
    /// exemplar-storage (keep scraped exemplars in memory, `storage.exemplars.max_exemplars` in
    /// the configuration file, default 100000).
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

    /// Max time to tolerate an outage when restoring the `for` state of alerts.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    pub for_outage_tolerance: String,

    /// Minimum duration between alert and restored `for` state; kept only for alerts with a
    /// `for` at least this long.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    pub for_grace_period: String,

    /// Minimum amount of time to wait before resending an alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    pub resend_delay: String,

    /// The capacity of the queue for pending Alertmanager notifications.
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value_t = 10000
    )]
    pub notification_queue_capacity: usize,

    /// How long a remote-write queue keeps sending what it holds on shutdown or when a reload
    /// replaces it; the rest stays in the WAL and is sent after the next start.
    #[arg(long = "storage.remote.flush-deadline", default_value = "1m")]
    pub remote_flush_deadline: String,

    /// Most WAL kept on disk for remote-write queues that fall behind (a receiver outage), e.g.
    /// 4GB. Beyond it the oldest segments are released and the samples in them are not sent. 0: no
    /// limit.
    #[arg(long = "storage.remote.wal-max-hold-size", default_value = "4GB")]
    pub remote_wal_max_hold: String,
}

/// Bytes a held sample is reckoned at for the default `--query.max-samples-total`: a timestamp
/// and a value, before any per-series overhead.
const BYTES_PER_SAMPLE: u64 = 16;

impl ServerFlags {
    /// `--query.max-samples-total`, or its default: a quarter of physical memory (MemTotal in
    /// /proc/meminfo) at [`BYTES_PER_SAMPLE`], or 4 × `--query.max-samples` where that cannot be
    /// read; never below `--query.max-samples`, so one query alone always gets its own bound.
    pub fn max_samples_total(&self) -> usize {
        let chosen = self.query_max_samples_total.unwrap_or_else(|| {
            let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
            match mem_total_bytes(&meminfo) {
                Some(bytes) => usize::try_from(bytes / 4 / BYTES_PER_SAMPLE).unwrap_or(usize::MAX),
                None => self.query_max_samples.saturating_mul(4),
            }
        });
        chosen.max(self.query_max_samples)
    }

    /// Every flag and its value, named as on the command line, for `/api/v1/status/flags`.
    pub fn to_map(&self) -> std::collections::BTreeMap<String, String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            ("config.file", self.config_file.display().to_string()),
            ("storage.tsdb.path", self.storage_path.display().to_string()),
            ("web.listen-address", self.listen_address.clone()),
            ("web.external-url", opt(&self.external_url)),
            ("web.route-prefix", opt(&self.route_prefix)),
            ("storage.tsdb.retention.time", self.retention_time.clone()),
            ("storage.tsdb.retention.size", self.retention_size.clone()),
            (
                "storage.tsdb.min-block-duration",
                self.min_block_duration.clone(),
            ),
            (
                "web.config.file",
                self.web_config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "web.dashboards.dir",
                self.dashboards_dir
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("web.enable-lifecycle", self.enable_lifecycle.to_string()),
            ("web.enable-admin-api", self.enable_admin_api.to_string()),
            (
                "web.enable-remote-write-receiver",
                self.enable_remote_write_receiver.to_string(),
            ),
            ("query.max-samples", self.query_max_samples.to_string()),
            (
                "query.max-samples-total",
                self.max_samples_total().to_string(),
            ),
            ("query.timeout", self.query_timeout.clone()),
            ("query.max-length", self.query_max_length.to_string()),
            (
                "query.max-expression-depth",
                self.query_max_expression_depth.to_string(),
            ),
            (
                "query.max-concurrency",
                self.query_max_concurrency.to_string(),
            ),
            ("query.lookback-delta", self.query_lookback_delta.clone()),
            ("enable-feature", self.enable_feature.join(",")),
            (
                "storage.remote.flush-deadline",
                self.remote_flush_deadline.clone(),
            ),
            (
                "storage.remote.wal-max-hold-size",
                self.remote_wal_max_hold.clone(),
            ),
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
            (
                "rules.alert.for-outage-tolerance",
                self.for_outage_tolerance.clone(),
            ),
            (
                "rules.alert.for-grace-period",
                self.for_grace_period.clone(),
            ),
            ("rules.alert.resend-delay", self.resend_delay.clone()),
            (
                "alertmanager.notification-queue-capacity",
                self.notification_queue_capacity.to_string(),
            ),
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
    /// Serve Dynamo's six jobs and the Kubernetes-side jobs from the built-in generator on
    /// loopback ports and run the server scraping them with the platform's job names and
    /// intervals.
    Demo(DemoFlags),
    /// Record every scrape of a configuration's static targets for a while, one zstd
    /// recording per job (format: crates/fixtures/FORMAT.md).
    Record(RecordFlags),
    /// Replay recordings: as live loopback targets (`--serve`) or straight into a data
    /// directory (`--import`).
    Replay(ReplayFlags),
    /// Write generator recordings of every generator job (what `fixtures/` holds; larger ones
    /// for benchmarks).
    Generate(GenerateFlags),
    /// Import data into blocks, like `promtool tsdb create-blocks-from`.
    Import {
        /// What to import.
        #[command(subcommand)]
        what: Import,
    },
}

/// What `edgeprom import` reads.
#[derive(Debug, Subcommand)]
pub enum Import {
    /// An OpenMetrics file, every sample timestamped, ending in `# EOF`; streamed, so it may be
    /// larger than memory. A value spelled `stale` is stored as a staleness marker.
    Openmetrics {
        /// The input file.
        file: PathBuf,

        /// Data directory the blocks are added to.
        #[arg(long = "storage.tsdb.path", default_value = "data/")]
        storage_path: PathBuf,

        /// Do not show a progress bar (it is shown only on a terminal anyway).
        #[arg(long = "no-progress")]
        no_progress: bool,
    },
}

/// Flags of `edgeprom record`.
#[derive(Debug, clap::Args)]
pub struct RecordFlags {
    /// Prometheus configuration file whose static targets are recorded.
    #[arg(long = "config.file", default_value = "prometheus.yml")]
    pub config_file: PathBuf,

    /// How long to record (Prometheus duration, e.g. 30s, 5m).
    #[arg(long = "duration", default_value = "1m")]
    pub duration: String,

    /// Directory the recordings (`<job>.epfix.zst`) are written to.
    #[arg(long = "out", default_value = "recording")]
    pub out: PathBuf,
}

/// Flags of `edgeprom replay`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["serve", "import"]))]
pub struct ReplayFlags {
    /// Recordings, or directories of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Serve the recorded bodies on loopback, looping, with explicit timestamps stripped.
    #[arg(long)]
    pub serve: bool,

    /// Ingest the recorded scrapes into `--storage.tsdb.path` and write blocks.
    #[arg(long)]
    pub import: bool,

    /// Data directory for `--import`.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub storage_path: PathBuf,

    /// For `--import`: keep the recorded timestamps (`original`) or shift them so the newest
    /// scrape lands now (`now`).
    #[arg(long, value_enum, default_value_t = ShiftMode::Original)]
    pub shift: ShiftMode,

    /// For `--serve`: first loopback port (one per target, consecutive); 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// For `--serve`: also write a `prometheus.yml` scraping the served targets to this file.
    #[arg(long = "config.out")]
    pub config_out: Option<PathBuf>,
}

/// Where `replay --import` puts samples in time.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShiftMode {
    /// At the recorded timestamps.
    Original,
    /// Shifted so the newest recorded scrape lands at the current time.
    Now,
}

/// Flags of `edgeprom generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateFlags {
    /// Directory the recordings are written to.
    #[arg(long = "out", default_value = "fixtures/dynamo")]
    pub out: PathBuf,

    /// Simulated backend workers (one GPU each), in decode/prefill pairs.
    #[arg(long, default_value_t = edgeprom_fixtures::demo::DEMO_WORKERS)]
    pub workers: usize,

    /// Seconds of scrapes, from 2026-01-01T00:00:00Z.
    #[arg(long = "duration-seconds", default_value_t = 300)]
    pub duration_s: i64,

    /// Seed of the generator: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Flags of `edgeprom demo`.
#[derive(Debug, clap::Args)]
pub struct DemoFlags {
    /// Base path for metrics storage; the generated `prometheus.yml` is written there too.
    #[arg(long = "storage.tsdb.path", default_value = "data-demo/")]
    pub storage_path: PathBuf,

    /// Address to listen on for the web interface and API.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,

    /// Simulated Dynamo backend workers (one GPU each), in decode/prefill pairs.
    #[arg(long = "demo.workers", default_value_t = edgeprom_fixtures::demo::DEMO_WORKERS)]
    pub workers: usize,

    /// Seed of the generator.
    #[arg(long = "demo.seed", default_value_t = 1)]
    pub seed: u64,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
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
    /// Check that rule files are valid, like `promtool check rules`.
    Rules {
        /// The rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `MemTotal` from the text of `/proc/meminfo` (`MemTotal:  16303548 kB`), in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    let unit = match words.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn mem_total_is_read_in_bytes() {
        let text = "MemTotal:       16303548 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total_bytes(text), Some(16_303_548 * 1024));
        assert_eq!(mem_total_bytes("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total_bytes("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn max_samples_total_is_never_below_max_samples() {
        let parse = |args: &[&str]| {
            let mut all = vec!["edgeprom"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all) {
                Ok(cli) => cli.server,
                Err(e) => panic!("{e}"),
            }
        };
        let f = parse(&["--query.max-samples=100", "--query.max-samples-total=1000"]);
        assert_eq!(f.max_samples_total(), 1000);
        let f = parse(&["--query.max-samples=100", "--query.max-samples-total=10"]);
        assert_eq!(f.max_samples_total(), 100);
        // The default depends on the machine, but is at least one query's bound.
        let f = parse(&[]);
        assert!(f.max_samples_total() >= f.query_max_samples);
        assert_eq!(
            f.to_map().get("query.max-samples-total"),
            Some(&f.max_samples_total().to_string())
        );
    }
}
