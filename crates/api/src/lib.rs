//! edgeprom's HTTP API: Prometheus's `/api/v1` endpoints, `/federate` and the admin endpoints, with
//! Prometheus's JSON shapes, status codes and parameter parsing, so that clients written for
//! Prometheus (Grafana's Prometheus datasource first of all) work unchanged.
//!
//! Every read endpoint takes GET and POST with a form body alike; a method an endpoint does not
//! take is answered 405. Queries run on blocking threads, at most `max_concurrency` at once.

#![warn(missing_docs)]

mod admin;
mod federate;
mod metadata;
mod params;
mod parse_query;
mod query;
mod response;
mod rules;
mod series;
mod status;
mod write;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::{MethodRouter, get, post};
use edgeprom_model::Labels;
use edgeprom_scrape::{ExemplarStorage, Manager};
use edgeprom_storage::Storage;
use tokio::sync::Semaphore;
use tower_http::compression::CompressionLayer;

pub use params::{Params, parse_duration, parse_time};
pub use response::{ApiError, ApiResult, ErrorType, Success, format_value};

/// The version reported in `buildinfo`. Grafana picks its API client by the Prometheus version it
/// detects, so the Prometheus API level edgeprom implements comes first; edgeprom's own version is
/// the semver build suffix.
pub const PROMETHEUS_COMPAT_VERSION: &str = "3.0.0";

/// Query limits and switches, set from the command line.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Most samples one query may hold (`--query.max-samples`).
    pub max_samples: usize,
    /// Samples all queries being evaluated at once may hold together
    /// (`--query.max-samples-total`); the server shares it with rule evaluation.
    pub sample_budget: edgeprom_promql::SampleBudget,
    /// Longest a query may run (`--query.timeout`), and a series, label or federation read too;
    /// a request's `timeout` can only shorten it.
    pub timeout: Duration,
    /// Queries evaluated at once (`--query.max-concurrency`); more wait.
    pub max_concurrency: usize,
    /// Default lookback of instant selectors (`--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// Experimental PromQL functions allowed (`--enable-feature=promql-experimental-functions`).
    pub experimental_functions: bool,
    /// Bounds on query text: `--query.max-length`, `--query.max-expression-depth`.
    pub query_limits: edgeprom_promql::QueryLimits,
    /// Whether the admin endpoints answer (`--web.enable-admin-api`).
    pub enable_admin_api: bool,
    /// Whether `POST /api/v1/write` accepts remote-write requests
    /// (`--web.enable-remote-write-receiver`); otherwise it answers 404 as Prometheus does.
    pub enable_remote_write_receiver: bool,
    /// Flag names (without `--`) and values, for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
    /// How long the storage keeps data, for `runtimeinfo` (e.g. `15d`).
    pub storage_retention: String,
    /// The address the server listens on (`--web.listen-address`), for targets' `globalUrl`.
    pub listen_address: String,
    /// The URL under which the server is reachable from outside (`--web.external-url`, or the
    /// one derived from the host name and port); its scheme and host make targets' `globalUrl`.
    /// Empty: the host name, with each target's own port.
    pub external_url: String,
}

impl Default for ApiOptions {
    fn default() -> ApiOptions {
        ApiOptions {
            max_samples: 50_000_000,
            sample_budget: edgeprom_promql::SampleBudget::unlimited(),
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            lookback_delta: Duration::from_secs(300),
            experimental_functions: false,
            query_limits: edgeprom_promql::QueryLimits::default(),
            enable_admin_api: false,
            enable_remote_write_receiver: false,
            flags: BTreeMap::new(),
            storage_retention: "15d".into(),
            listen_address: "0.0.0.0:9090".into(),
            external_url: String::new(),
        }
    }
}

/// The running configuration as the status endpoints and federation see it; the server updates it
/// on every reload.
#[derive(Debug, Clone)]
pub struct ConfigStatus {
    /// The configuration file's text as last loaded successfully, secrets masked.
    pub yaml: String,
    /// `global.external_labels`, added by `/federate`.
    pub external_labels: Labels,
    /// Whether the last reload succeeded.
    pub reload_success: bool,
    /// When the configuration was last loaded successfully.
    pub last_config_time: SystemTime,
}

impl Default for ConfigStatus {
    fn default() -> ConfigStatus {
        ConfigStatus {
            yaml: String::new(),
            external_labels: Labels::new(),
            reload_success: true,
            last_config_time: SystemTime::now(),
        }
    }
}

/// Everything the API reads: storage, the scrape manager, options and the configuration status.
pub struct Api {
    storage: Arc<Storage>,
    manager: Option<Arc<Manager>>,
    options: ApiOptions,
    queries: Arc<Semaphore>,
    config: RwLock<ConfigStatus>,
    start_time: SystemTime,
    rules: OnceLock<Arc<dyn edgeprom_model::rules::RulesView>>,
    exemplars: Option<Arc<ExemplarStorage>>,
}

impl Api {
    /// The API over `storage`; `manager` supplies `/api/v1/targets` (no targets without one).
    pub fn new(storage: Arc<Storage>, manager: Option<Arc<Manager>>, options: ApiOptions) -> Api {
        Api {
            storage,
            manager,
            queries: Arc::new(Semaphore::new(options.max_concurrency.max(1))),
            options,
            config: RwLock::new(ConfigStatus::default()),
            start_time: SystemTime::now(),
            rules: OnceLock::new(),
            exemplars: None,
        }
    }

    /// Serves `/api/v1/query_exemplars` from `exemplars` (the store the scrape manager fills
    /// with `--enable-feature=exemplar-storage`); without it the answer is always empty.
    pub fn with_exemplar_storage(mut self, exemplars: Arc<ExemplarStorage>) -> Api {
        self.exemplars = Some(exemplars);
        self
    }

    /// Connects the rules manager, which answers `/api/v1/rules`, `/api/v1/alerts` and
    /// `/api/v1/alertmanagers` (empty until connected). Only the first call takes effect.
    pub fn set_rules(&self, view: Arc<dyn edgeprom_model::rules::RulesView>) {
        let _ = self.rules.set(view);
    }

    fn rules_view(&self) -> Option<&Arc<dyn edgeprom_model::rules::RulesView>> {
        self.rules.get()
    }

    /// Replaces the configuration status (after a load or reload).
    pub fn set_config_status(&self, status: ConfigStatus) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// Records a failed reload: the running configuration stays, the flag goes false.
    pub fn set_reload_failed(&self) {
        self.config
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .reload_success = false;
    }

    fn config_status(&self) -> ConfigStatus {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// GET and POST, the methods Prometheus registers for its read endpoints.
fn read<H, T>(handler: H) -> MethodRouter<Arc<Api>>
where
    H: axum::handler::Handler<T, Arc<Api>> + Clone,
    T: 'static,
{
    get(handler.clone()).post(handler)
}

/// The router with every endpoint, gzip-compressed when the client accepts it.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/query", read(query::instant))
        .route("/api/v1/query_range", read(query::range))
        .route("/api/v1/query_exemplars", read(query::exemplars))
        .route("/api/v1/format_query", read(query::format))
        .route("/api/v1/parse_query", read(parse_query::handler))
        .route("/api/v1/series", read(series::series))
        .route("/api/v1/labels", read(series::labels))
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .route("/api/v1/metadata", get(metadata::metadata))
        .route("/api/v1/targets", get(status::targets))
        .route("/api/v1/targets/metadata", get(metadata::targets_metadata))
        .route("/api/v1/alertmanagers", get(rules::alertmanagers))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route("/api/v1/status/walreplay", get(status::walreplay))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route("/federate", get(federate::handler))
        .route(
            "/api/v1/write",
            post(write::handler).layer(axum::extract::DefaultBodyLimit::max(write::MAX_BODY_BYTES)),
        )
        .layer(CompressionLayer::new())
        .with_state(api)
}

/// Configuration keys whose values Prometheus treats as secrets (its `Secret` type).
const SECRET_KEYS: [&str; 5] = [
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "secret_key",
];

/// Replaces the values of secret keys in configuration YAML with `<secret>`, as Prometheus shows
/// secrets in `/api/v1/status/config`. Works line by line on `key: value` pairs, which is how
/// these keys are written in practice (flow-style maps with secrets are not rewritten).
pub fn mask_secrets(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent_len = body.len() - body.trim_start_matches([' ', '-', '\t']).len();
        let (indent, rest) = body.split_at(indent_len);
        match rest.split_once(':') {
            Some((key, value))
                if SECRET_KEYS.contains(&key.trim().trim_matches(['"', '\'']))
                    && !value.trim().is_empty() =>
            {
                out.push_str(indent);
                out.push_str(key);
                out.push_str(": <secret>");
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Parses a query, selector or `match[]` text under the server's [`ApiOptions::query_limits`]:
/// anything that reaches `promql-parser` goes through here, because the parser and the code
/// walking its tree recurse once per nesting level.
pub(crate) fn parse_expr(api: &Api, text: &str) -> Result<promql_parser::parser::Expr, String> {
    edgeprom_promql::parse_bounded(text, &api.options.query_limits).map_err(|e| e.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
