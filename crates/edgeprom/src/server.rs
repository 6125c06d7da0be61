//! The server: loads the configuration, opens storage, runs the scrape manager and the HTTP
//! endpoints, and reloads on SIGHUP or `POST /-/reload`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use edgeprom_config::Config;
use edgeprom_scrape::{ExemplarStorage, Manager, ScrapeMetrics};
use edgeprom_storage::Storage;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

use crate::cli::{LogFormat, LogLevel, ServerFlags};
use crate::web_config::{TlsListener, WebConfig};

struct App {
    config_file: PathBuf,
    lifecycle: bool,
    manager: Arc<Manager>,
    rules: Arc<edgeprom_rules::Manager>,
    remote: Arc<edgeprom_remote::RemoteWrite>,
    api: Arc<edgeprom_api::Api>,
    /// With `--enable-feature=exemplar-storage`: resized on reload like Prometheus's.
    exemplars: Option<Arc<ExemplarStorage>>,
    registry: Registry,
    reload_lock: tokio::sync::Mutex<()>,
    last_reload_ok: Gauge,
    last_reload_time: Gauge<f64, AtomicU64>,
    ready: AtomicBool,
    quit: Notify,
}

/// Stack of every runtime thread, blocking-pool threads (queries, rules) included.
const RUNTIME_STACK_BYTES: usize = 16 << 20;

/// Runs until SIGINT/SIGTERM or `POST /-/quit`.
pub fn run(flags: ServerFlags) -> ExitCode {
    init_logging(flags.log_level, flags.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Parsing, evaluating and dropping a query recurse once per nesting level; with
        // --query.max-expression-depth at its default a debug build needs more than the 2 MiB
        // default. Only touched pages cost memory.
        .thread_stack_size(RUNTIME_STACK_BYTES)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "starting the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "edgeprom stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        // Logs go to stderr, as Prometheus's do, leaving stdout to tools.
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(crate::log_writer::BoundedStderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(crate::log_writer::BoundedStderr),
            )
            .try_init(),
    };
}

#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("error loading config ({0})")]
    Config(#[from] edgeprom_config::ConfigError),
    #[error("opening storage: {0}")]
    Storage(#[from] edgeprom_storage::StorageError),
    #[error("invalid --{0}: {1}")]
    Flag(&'static str, String),
    #[error("error loading rules ({0})")]
    Rules(#[from] edgeprom_rules::RulesError),
    #[error("{0}")]
    WebConfig(#[from] crate::web_config::WebConfigError),
    #[error("listening on {0}: {1}")]
    Listen(String, std::io::Error),
    #[error("{0}")]
    RemoteWrite(#[from] edgeprom_remote::QueueError),
}

/// Why a reload was refused (the running configuration stays in force).
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error(transparent)]
    Config(#[from] edgeprom_config::ConfigError),
    #[error(transparent)]
    RemoteWrite(#[from] edgeprom_remote::QueueError),
}

async fn serve(flags: ServerFlags) -> Result<(), ServeError> {
    for feature in &flags.enable_feature {
        match feature.as_str() {
            "promql-experimental-functions" => {}
            "exemplar-storage" => tracing::info!("Experimental in-memory exemplar storage enabled"),
            _ => tracing::warn!(feature, "unknown feature flag ignored"),
        }
    }
    let web_urls = WebUrls::new(
        flags.external_url.as_deref(),
        flags.route_prefix.as_deref(),
        &flags.listen_address,
    )
    .map_err(|e| ServeError::Flag("web.external-url", e))?;
    for (flag, value) in [
        ("web.console.templates", &flags.console_templates),
        ("web.console.libraries", &flags.console_libraries),
    ] {
        if value.is_some() {
            tracing::warn!(
                flag,
                "flag accepted for compatibility and ignored: edgeprom has no consoles"
            );
        }
    }
    let retention = edgeprom_config::Duration::parse(&flags.retention_time)
        .map_err(|e| ServeError::Flag("storage.tsdb.retention.time", e.to_string()))?;
    let wal_hold_max_bytes = edgeprom_config::parse_base2_bytes(&flags.remote_wal_max_hold)
        .map_err(|e| ServeError::Flag("storage.remote.wal-max-hold-size", e))?;
    let retention_bytes = edgeprom_config::parse_base2_bytes(&flags.retention_size)
        .map_err(|e| ServeError::Flag("storage.tsdb.retention.size", e))?;
    let block_range = edgeprom_config::Duration::parse(&flags.min_block_duration)
        .map_err(|e| ServeError::Flag("storage.tsdb.min-block-duration", e.to_string()))?;
    let query_timeout = edgeprom_config::Duration::parse(&flags.query_timeout)
        .map_err(|e| ServeError::Flag("query.timeout", e.to_string()))?;
    let lookback_delta = edgeprom_config::Duration::parse(&flags.query_lookback_delta)
        .map_err(|e| ServeError::Flag("query.lookback-delta", e.to_string()))?;
    let duration_flag = |name: &'static str, v: &str| {
        edgeprom_config::Duration::parse(v)
            .map(|d| d.as_std())
            .map_err(|e| ServeError::Flag(name, e.to_string()))
    };
    let outage_tolerance = duration_flag(
        "rules.alert.for-outage-tolerance",
        &flags.for_outage_tolerance,
    )?;
    let grace_period = duration_flag("rules.alert.for-grace-period", &flags.for_grace_period)?;
    let resend_delay = duration_flag("rules.alert.resend-delay", &flags.resend_delay)?;
    let flush_deadline = duration_flag(
        "storage.remote.flush-deadline",
        &flags.remote_flush_deadline,
    )?;
    let query_limits = edgeprom_promql::QueryLimits {
        max_length: flags.query_max_length,
        max_depth: flags.query_max_expression_depth,
    };
    if flags.query_max_concurrency == 0 {
        return Err(ServeError::Flag(
            "query.max-concurrency",
            "must be at least 1".into(),
        ));
    }

    // Before storage is opened, so a bad web config fails fast and touches nothing.
    let web = flags
        .web_config_file
        .as_deref()
        .map(WebConfig::load)
        .transpose()?;

    let config = Config::load(&flags.config_file)?;
    let storage = Arc::new(Storage::open(
        &flags.storage_path,
        edgeprom_storage::Options {
            retention_ms: retention.as_millis() as i64,
            retention_bytes,
            block_range_ms: block_range.as_millis().max(1) as i64,
            wal_hold_max_bytes,
            ..edgeprom_storage::Options::default()
        },
    )?);
    let report = storage.open_report();
    tracing::info!(
        series = storage.num_series(),
        blocks = report.blocks,
        replayed = report.samples_replayed,
        in_chunks = report.samples_already_in_chunks,
        wal = %report.wal_replay,
        "storage opened"
    );
    for q in &report.quarantined {
        tracing::error!(block = %q, "block quarantined");
    }
    for problem in &report.head_chunk_problems {
        tracing::warn!(%problem, "head chunk file damaged; data before the damage kept");
    }

    let mut registry = Registry::default();
    let scrape_metrics = Arc::new(ScrapeMetrics::register(&mut registry));
    let last_reload_ok = Gauge::default();
    let last_reload_time = Gauge::<f64, AtomicU64>::default();
    registry.register(
        "prometheus_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful",
        last_reload_ok.clone(),
    );
    registry.register(
        "prometheus_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration reload",
        last_reload_time.clone(),
    );
    registry.register_collector(Box::new(crate::storage_metrics::StorageCollector(
        storage.clone(),
    )));
    let experimental_functions = flags
        .enable_feature
        .iter()
        .any(|f| f == "promql-experimental-functions");
    // One budget for every query evaluated at once, API queries and rule evaluations alike.
    let sample_budget = edgeprom_promql::SampleBudget::new(flags.max_samples_total());
    tracing::info!(
        max_samples_total = sample_budget.limit(),
        "samples all queries at once may hold"
    );
    let notifier = edgeprom_rules::Notifier::new(
        flags.notification_queue_capacity,
        edgeprom_rules::NotifierMetrics::register(&mut registry),
    );
    let rules = Arc::new(edgeprom_rules::Manager::new(
        storage.clone(),
        notifier.clone(),
        edgeprom_rules::RuleMetrics::register(&mut registry),
        edgeprom_rules::EvalContext {
            engine: edgeprom_promql::Engine::new(edgeprom_promql::EngineOptions {
                lookback_delta: lookback_delta.as_std(),
                max_samples: flags.query_max_samples,
                timeout: query_timeout.as_std(),
                default_subquery_step: config.global.evaluation_interval.as_std(),
                experimental_functions,
                limits: query_limits,
                sample_budget: sample_budget.clone(),
            }),
            external_labels: config.global.external_labels.clone(),
            external_url: web_urls.external_url.clone(),
            resend_delay,
            outage_tolerance,
            grace_period,
        },
    ));
    // Rules first: a bad rule file stops the start before anything is scraped.
    rules.apply_config(&config)?;
    tokio::spawn(notifier.run());
    let exemplars = flags
        .enable_feature
        .iter()
        .any(|f| f == "exemplar-storage")
        .then(|| Arc::new(ExemplarStorage::new(config.storage.max_exemplars())));
    if let Some(e) = &exemplars {
        registry.register_collector(Box::new(crate::storage_metrics::ExemplarCollector(
            e.clone(),
        )));
    }
    let manager = Arc::new(Manager::with_exemplars(
        storage.clone(),
        scrape_metrics,
        exemplars.clone(),
    ));
    // Before scraping and the maintenance loop start: a new queue sends from the WAL's current
    // end, and no checkpoint may remove WAL a resuming queue still needs.
    let remote = Arc::new(edgeprom_remote::RemoteWrite::new(
        storage.clone(),
        edgeprom_remote::RemoteMetrics::register(&mut registry),
        flush_deadline,
        Some(Arc::new(ScrapeMetadata(manager.clone()))),
    ));
    remote
        .apply_config(&config.remote_write, &config.global.external_labels)
        .await?;
    manager.apply_config(&config);
    let mut api = edgeprom_api::Api::new(
        storage.clone(),
        Some(manager.clone()),
        edgeprom_api::ApiOptions {
            max_samples: flags.query_max_samples,
            sample_budget,
            timeout: query_timeout.as_std(),
            max_concurrency: flags.query_max_concurrency,
            lookback_delta: lookback_delta.as_std(),
            experimental_functions,
            query_limits,
            enable_admin_api: flags.enable_admin_api,
            enable_remote_write_receiver: flags.enable_remote_write_receiver,
            flags: flags.to_map(),
            storage_retention: flags.retention_time.clone(),
            listen_address: flags.listen_address.clone(),
            external_url: web_urls.external_url.clone(),
        },
    );
    if let Some(e) = &exemplars {
        api = api.with_exemplar_storage(e.clone());
    }
    let api = Arc::new(api);
    api.set_config_status(config_status(&flags.config_file, &config));
    api.set_rules(rules.clone());
    last_reload_ok.set(1);
    last_reload_time.set(unix_now());
    tracing::info!(file = %flags.config_file.display(), jobs = config.scrape_configs.len(), "configuration loaded");

    let app = Arc::new(App {
        config_file: flags.config_file.clone(),
        lifecycle: flags.enable_lifecycle,
        manager,
        rules,
        remote: remote.clone(),
        api: api.clone(),
        exemplars,
        registry,
        reload_lock: tokio::sync::Mutex::new(()),
        last_reload_ok,
        last_reload_time,
        ready: AtomicBool::new(false),
        quit: Notify::new(),
    });

    let listener = tokio::net::TcpListener::bind(&flags.listen_address)
        .await
        .map_err(|e| ServeError::Listen(flags.listen_address.clone(), e))?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| ServeError::Listen(flags.listen_address.clone(), e))?;
    let tls = web.as_ref().and_then(|w| w.tls.clone());
    tracing::info!(
        address = %local,
        tls = tls.is_some(),
        basic_auth = web.as_ref().is_some_and(|w| w.auth.is_some()),
        client_certs = web.as_ref().is_some_and(|w| w.client_certs),
        web_config = %flags.web_config_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
        "listening"
    );

    tokio::spawn(reload_on_sighup(app.clone()));
    // Prometheus checks for compaction every minute; blocks shorter than two minutes (a hidden
    // flag, for tests) are checked every half block.
    let maintenance_every = Duration::from_secs(60)
        .min(block_range.as_std() / 2)
        .max(Duration::from_millis(100));
    tokio::spawn(maintenance_loop(storage.clone(), maintenance_every));
    app.ready.store(true, std::sync::atomic::Ordering::Release);

    let shutdown_app = app.clone();
    let ui = edgeprom_web::router(edgeprom_web::WebOptions {
        route_prefix: web_urls.route_prefix.clone(),
        dashboards_dir: flags.dashboards_dir.clone(),
    });
    let mut router = web_urls.mount(
        routes(app.clone())
            .merge(edgeprom_api::router(api))
            .merge(ui),
    );
    tracing::info!(external_url = %web_urls.external_url, route_prefix = %web_urls.route_prefix, "web");
    if let Some(web) = &web {
        if let Some(auth) = &web.auth {
            router = router.layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                crate::web_config::require_basic_auth,
            ));
        }
        // Outermost, so that 401 answers carry the configured headers too.
        if !web.headers.is_empty() {
            router = router.layer(axum::middleware::from_fn_with_state(
                web.headers.clone(),
                crate::web_config::add_headers,
            ));
        }
    }
    let shutdown = async move {
        tokio::select! {
            _ = termination_signal() => tracing::info!("received termination signal"),
            _ = shutdown_app.quit.notified() => tracing::info!("received /-/quit"),
        }
    };
    let result = match tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)
                .map_err(|e| ServeError::Listen(flags.listen_address.clone(), e))?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    app.manager.stop();
    app.rules.stop();
    remote.stop().await;
    if let Err(e) = storage.sync() {
        tracing::error!(error = %e, "syncing the WAL at shutdown");
    }
    result.map_err(|e| ServeError::Listen(flags.listen_address, e))
}

/// The scrape manager's metadata, for remote write's `metadata_config`.
struct ScrapeMetadata(Arc<Manager>);

impl edgeprom_remote::MetadataSource for ScrapeMetadata {
    fn metric_metadata(&self) -> Vec<edgeprom_remote::FamilyMetadata> {
        self.0
            .metadata()
            .iter()
            .flat_map(|t| t.metadata.iter())
            .map(|m| edgeprom_remote::FamilyMetadata {
                family: m.metric_family.clone(),
                kind: m.kind,
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect()
    }
}

/// `--web.external-url` and `--web.route-prefix` resolved as Prometheus resolves them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WebUrls {
    /// The external URL without a trailing `/` on its path.
    external_url: String,
    /// Where the routes are mounted: `/`, or a path starting with `/` and not ending with one.
    route_prefix: String,
}

impl WebUrls {
    /// Prometheus's `computeExternalURL` and route-prefix defaulting: no external URL means
    /// `http://<host name>:<listen port>/`; its path, trailing `/` removed, is the default prefix.
    fn new(
        external_url: Option<&str>,
        route_prefix: Option<&str>,
        listen_address: &str,
    ) -> Result<WebUrls, String> {
        let given = external_url.filter(|u| !u.is_empty());
        let url = match given {
            Some(u) => u.to_string(),
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".to_string());
                let port = listen_address
                    .rsplit_once(':')
                    .map(|(_, p)| p)
                    .ok_or_else(|| format!("address {listen_address}: missing port in address"))?;
                format!("http://{host}:{port}/")
            }
        };
        if url.starts_with(['"', '\'']) || url.ends_with(['"', '\'']) {
            return Err("URL must not begin or end with quotes".into());
        }
        let (origin, rest) = match url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                (format!("{scheme}://{}", &rest[..end]), &rest[end..])
            }
            None => (String::new(), url.as_str()),
        };
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let mut path = path.trim_end_matches('/').to_string();
        if !path.is_empty() && !path.starts_with('/') {
            path.insert(0, '/');
        }
        let prefix = route_prefix.filter(|p| !p.is_empty()).unwrap_or(&path);
        Ok(WebUrls {
            external_url: format!("{origin}{path}"),
            route_prefix: format!("/{}", prefix.trim_matches('/')),
        })
    }

    /// Serves `router` under the route prefix; outside it only `GET /` answers, redirecting to
    /// the prefix as Prometheus does. The prefix with a trailing `/` (which nesting does not
    /// match) redirects there too, so `http://host/prefix/` opens the UI.
    fn mount(&self, router: Router) -> Router {
        if self.route_prefix == "/" {
            return router;
        }
        let target = self.route_prefix.clone();
        // Prometheus answers with 302 Found.
        let redirect =
            get(move || async move { (StatusCode::FOUND, [(header::LOCATION, target)]) });
        Router::new()
            .nest(&self.route_prefix, router)
            .route("/", redirect.clone())
            .route(&format!("{}/", self.route_prefix), redirect)
    }
}

fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/-/quit", post(quit).put(quit))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &app.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthy() -> &'static str {
    "edgeprom Server is Healthy.\n"
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(std::sync::atomic::Ordering::Acquire) {
        "edgeprom Server is Ready.\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

async fn reload(State(app): State<Arc<App>>) -> Response {
    if !app.lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    }
    match reload_config(&app).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

async fn quit(State(app): State<Arc<App>>) -> Response {
    if !app.lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    }
    app.quit.notify_one();
    "Requesting termination... Goodbye!\n".into_response()
}

/// Loads the configuration file again; on error the running configuration stays in force.
async fn reload_config(app: &App) -> Result<(), ReloadError> {
    let _serial = app.reload_lock.lock().await;
    // A bad rule file fails the reload like a bad config: nothing changes.
    let loaded = Config::load(&app.config_file).and_then(|cfg| {
        app.rules.apply_config(&cfg).map_err(|e| match e {
            edgeprom_rules::RulesError::File(e) => e,
        })?;
        Ok(cfg)
    });
    let loaded = match loaded {
        Ok(cfg) => app
            .remote
            .apply_config(&cfg.remote_write, &cfg.global.external_labels)
            .await
            .map(|()| cfg)
            .map_err(ReloadError::from),
        Err(e) => Err(e.into()),
    };
    match loaded {
        Ok(cfg) => {
            if let Some(e) = &app.exemplars {
                e.resize(cfg.storage.max_exemplars());
            }
            app.manager.apply_config(&cfg);
            app.api
                .set_config_status(config_status(&app.config_file, &cfg));
            app.last_reload_ok.set(1);
            app.last_reload_time.set(unix_now());
            tracing::info!(file = %app.config_file.display(), "configuration reloaded");
            Ok(())
        }
        Err(e) => {
            app.last_reload_ok.set(0);
            app.api.set_reload_failed();
            tracing::error!(error = %e, "reloading configuration failed; keeping the running one");
            Err(e)
        }
    }
}

/// What `/api/v1/status/config` and `/federate` see of a configuration just loaded.
fn config_status(file: &std::path::Path, cfg: &Config) -> edgeprom_api::ConfigStatus {
    // The text as written, with secret values hidden as Prometheus hides them.
    let yaml = std::fs::read_to_string(file)
        .map(|t| edgeprom_api::mask_secrets(&t))
        .unwrap_or_default();
    edgeprom_api::ConfigStatus {
        yaml,
        external_labels: cfg.global.external_labels.clone(),
        reload_success: true,
        last_config_time: SystemTime::now(),
    }
}

async fn reload_on_sighup(app: Arc<App>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        let _ = reload_config(&app).await;
    }
}

async fn termination_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Head compaction, retention and WAL checkpoints, off the scrape path. A pass that fails (a full
/// or failing disk) is logged and counted; the next one retries.
async fn maintenance_loop(storage: Arc<Storage>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = storage.clone();
        let now = (unix_now() * 1000.0) as i64;
        match tokio::task::spawn_blocking(move || s.maintain(now)).await {
            Ok(Ok(report)) => tracing::debug!(?report, "storage maintenance done"),
            Ok(Err(e)) => tracing::error!(error = %e, "storage maintenance failed"),
            Err(e) => tracing::error!(error = %e, "storage maintenance panicked"),
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_url_and_route_prefix_as_prometheus_derives_them() {
        let w = WebUrls::new(Some("https://example.com/prom/"), None, ":9090").expect("valid");
        assert_eq!(w.external_url, "https://example.com/prom");
        assert_eq!(w.route_prefix, "/prom");
        let w = WebUrls::new(Some("https://example.com/prom"), Some("/inner/"), ":9090")
            .expect("valid");
        assert_eq!(w.route_prefix, "/inner");
        let w = WebUrls::new(Some("http://example.com"), None, ":9090").expect("valid");
        assert_eq!(
            (w.external_url.as_str(), w.route_prefix.as_str()),
            ("http://example.com", "/")
        );
        let w = WebUrls::new(None, None, "0.0.0.0:9191").expect("valid");
        assert!(w.external_url.starts_with("http://"), "{w:?}");
        assert!(w.external_url.ends_with(":9191"), "{w:?}");
        assert_eq!(w.route_prefix, "/");
        assert!(WebUrls::new(Some("\"http://x/\""), None, ":9090").is_err());
        assert!(WebUrls::new(None, None, "no-port").is_err());
    }
}
