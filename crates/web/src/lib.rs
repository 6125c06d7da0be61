//! The built-in web UI: `/graph`, `/targets`, `/alerts`, `/rules`, `/status` and `/dashboards`,
//! served from assets embedded in the binary (no CDN, works offline).
//!
//! Every page is the same HTML shell naming its page; plain ES modules render it from the HTTP API
//! with relative URLs, so the UI works under any `--web.route-prefix`. Assets live under
//! `static/<content hash>/…` and are cached as immutable: a new build has a new hash, and module
//! imports resolve relative to the module, so they carry the hash without a bundler.
//! Dashboards (Grafana JSON files and Kubernetes ConfigMaps holding them) come from
//! `--web.dashboards.dir`, or from the platform's dashboards embedded at build time.

mod assets;
mod dashboards;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;

pub use dashboards::{Dashboard, Dashboards};

/// The pages, by path below the route prefix.
pub const PAGES: [&str; 6] = [
    "graph",
    "targets",
    "alerts",
    "rules",
    "status",
    "dashboards",
];

/// What the web UI needs from the binary.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `/`, or a path starting with `/` and not ending with one (`--web.route-prefix`).
    pub route_prefix: String,
    /// `--web.dashboards.dir`; `None` serves the embedded platform dashboards.
    pub dashboards_dir: Option<PathBuf>,
}

struct Web {
    route_prefix: String,
    dashboards: Dashboards,
}

/// The UI's routes, to be mounted beside the API under the route prefix. Responses are
/// gzip-compressed when the client accepts it.
pub fn router(options: WebOptions) -> Router {
    let web = Arc::new(Web {
        dashboards: match options.dashboards_dir {
            Some(dir) => Dashboards::Dir(dir),
            None => Dashboards::Embedded,
        },
        route_prefix: options.route_prefix,
    });
    let mut router = Router::new()
        .route("/", get(root))
        .route("/static/{version}/{*file}", get(asset))
        .route("/ui/dashboards", get(dashboard_list))
        .route("/ui/dashboards/{id}", get(dashboard));
    for page in PAGES {
        router = router.route(&format!("/{page}"), get(move || async move { html(page) }));
    }
    router.layer(CompressionLayer::new()).with_state(web)
}

/// `GET /` (below the prefix) opens the graph page, as Prometheus does.
async fn root(State(web): State<Arc<Web>>) -> Response {
    let target = format!("{}/graph", web.route_prefix.trim_end_matches('/'));
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

fn html(page: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The shell names the current asset version: never serve a stale one.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        assets::page(page),
    )
        .into_response()
}

/// An embedded asset. Any version segment is accepted (a page of an older build still loads),
/// but only the current one is cached as immutable.
async fn asset(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(a) = assets::get(&file) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let etag = format!("\"{}\"", assets::version());
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let cache = if version == assets::version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut r = a.body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// The dashboards, read off the async workers: a directory is read again on every request.
async fn load(web: &Arc<Web>) -> Arc<Vec<Dashboard>> {
    let web = web.clone();
    tokio::task::spawn_blocking(move || web.dashboards.load())
        .await
        .unwrap_or_default()
}

async fn dashboard_list(State(web): State<Arc<Web>>) -> Response {
    let list = load(&web).await;
    let items: Vec<serde_json::Value> = list.iter().map(Dashboard::summary).collect();
    json(&serde_json::Value::Array(items))
}

async fn dashboard(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    match load(&web).await.iter().find(|d| d.id == id) {
        Some(d) => match &d.json {
            Ok(j) => json(j),
            Err(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{}: {e}\n", d.source),
            )
                .into_response(),
        },
        None => (StatusCode::NOT_FOUND, format!("no dashboard {id:?}\n")).into_response(),
    }
}

fn json(v: &serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        v.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
