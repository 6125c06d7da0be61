//! Targets and the `/api/v1/status/*` endpoints.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::response::labels_json;
use crate::{Api, ApiError, ApiResult, PROMETHEUS_COMPAT_VERSION, Params, Success};

/// Go's zero `time.Time`, which Prometheus shows for a target never scraped.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn prom_duration(d: std::time::Duration) -> String {
    edgeprom_config::Duration::from_std(d).to_string()
}

/// The machine's host name, for `globalUrl` when no external URL is known.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Go's `net.SplitHostPort` made lenient as Prometheus's `sanitizeSplitHostPort`: an authority
/// without a port gives its host (brackets removed) and an empty port.
fn split_host_port(authority: &str) -> (&str, &str) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').unwrap_or("")),
            None => (authority, ""),
        };
    }
    match authority.rsplit_once(':') {
        // More than one colon without brackets is a bare IPv6 address.
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (authority, ""),
    }
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What Prometheus's `GlobalURLOptions` hold: where the server listens and the scheme and
/// authority of its external URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GlobalUrlOptions {
    listen_address: String,
    scheme: String,
    authority: String,
}

impl GlobalUrlOptions {
    /// From `--web.listen-address` and the external URL; without an external URL, the host
    /// name as Prometheus derives its default one.
    fn new(listen_address: &str, external_url: &str) -> Option<GlobalUrlOptions> {
        let (scheme, authority) = match external_url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                (scheme.to_string(), rest[..end].to_string())
            }
            None => {
                let (_, port) = split_host_port(listen_address);
                ("http".to_string(), join_host_port(&hostname()?, port))
            }
        };
        Some(GlobalUrlOptions {
            listen_address: listen_address.to_string(),
            scheme,
            authority,
        })
    }
}

/// Prometheus's `getGlobalURL`: a target on localhost is unreachable from elsewhere, so its host
/// becomes the external URL's; if it is this server itself (same port as the listen address)
/// the external scheme and port are used too.
fn global_url(url: &str, opts: Option<&GlobalUrlOptions>) -> String {
    let Some(opts) = opts else {
        return url.to_string();
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (host, port) = split_host_port(authority);
    if !["127.0.0.1", "localhost", "::1"].contains(&host) {
        return url.to_string();
    }
    let (_, own_port) = split_host_port(&opts.listen_address);
    if port == own_port {
        return format!("{}://{}{path}", opts.scheme, opts.authority);
    }
    let (ext_host, _) = split_host_port(&opts.authority);
    if port.is_empty() {
        format!("{scheme}://{ext_host}{path}")
    } else {
        format!("{scheme}://{}{path}", join_host_port(ext_host, port))
    }
}

/// `GET /api/v1/targets`: active and dropped targets, filtered by `state` and `scrapePool`.
pub(crate) async fn targets(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let (show_active, show_dropped) = match state.as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let pool = p.get("scrapePool");
    let in_pool = |job: &str| pool.is_none_or(|p| p == job);
    let url_opts = GlobalUrlOptions::new(&api.options.listen_address, &api.options.external_url);
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(m) = &api.manager {
        if show_active {
            for t in m.targets().into_iter().filter(|t| in_pool(&t.target.job)) {
                active.push(json!({
                    "discoveredLabels": labels_json(&t.target.discovered),
                    "labels": labels_json(&t.target.labels),
                    "scrapePool": t.target.job,
                    "scrapeUrl": t.target.url,
                    "globalUrl": global_url(&t.target.url, url_opts.as_ref()),
                    "lastError": t.last_error,
                    "lastScrape": t.last_scrape.map_or(GO_ZERO_TIME.to_string(), rfc3339),
                    "lastScrapeDuration": t.last_scrape_duration.as_secs_f64(),
                    "health": t.health.as_str(),
                    "scrapeInterval": prom_duration(t.target.interval),
                    "scrapeTimeout": prom_duration(t.target.timeout),
                }));
            }
        }
        for d in m.dropped_targets() {
            *dropped_counts.entry(d.job.clone()).or_default() += 1;
            if show_dropped && in_pool(&d.job) {
                dropped.push(json!({
                    "discoveredLabels": labels_json(&d.discovered),
                    "scrapePool": d.job,
                }));
            }
        }
    }
    Ok(Success::json(&json!({
        "activeTargets": active,
        "droppedTargets": dropped,
        "droppedTargetCounts": dropped_counts,
    })))
}

/// `GET /api/v1/status/buildinfo`. Deliberately without `features`: Grafana takes its presence
/// to mean Mimir.
pub(crate) async fn buildinfo() -> ApiResult {
    Ok(Success::json(&json!({
        "version": format!("{PROMETHEUS_COMPAT_VERSION}+edgeprom.{}", env!("CARGO_PKG_VERSION")),
        "revision": option_env!("EDGEPROM_REVISION").unwrap_or("unknown"),
        "branch": option_env!("EDGEPROM_BRANCH").unwrap_or("unknown"),
        "buildUser": option_env!("EDGEPROM_BUILD_USER").unwrap_or("unknown"),
        "buildDate": option_env!("EDGEPROM_BUILD_DATE").unwrap_or("unknown"),
        "goVersion": "none (edgeprom is written in Rust)",
    })))
}

/// `GET /api/v1/status/config`: the loaded configuration file.
pub(crate) async fn config(State(api): State<Arc<Api>>) -> ApiResult {
    Ok(Success::json(&json!({"yaml": api.config_status().yaml})))
}

/// `GET /api/v1/status/flags`.
pub(crate) async fn flags(State(api): State<Arc<Api>>) -> ApiResult {
    Ok(Success::json(&json!(api.options.flags)))
}

/// `GET /api/v1/status/runtimeinfo`, with the Go runtime's fields filled from tokio's.
pub(crate) async fn runtimeinfo(State(api): State<Arc<Api>>) -> ApiResult {
    let cfg = api.config_status();
    let rt = tokio::runtime::Handle::current().metrics();
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    Ok(Success::json(&json!({
        "startTime": rfc3339(api.start_time),
        "CWD": cwd,
        "reloadConfigSuccess": cfg.reload_success,
        "lastConfigTime": rfc3339(cfg.last_config_time),
        "corruptionCount": api.storage.open_report().quarantined.len(),
        "goroutineCount": rt.num_alive_tasks(),
        "GOMAXPROCS": rt.num_workers(),
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": api.options.storage_retention,
    })))
}

/// `GET /api/v1/status/tsdb`: cardinality statistics over the stored series, top `limit` (10).
pub(crate) async fn tsdb(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let limit = match p.get("limit") {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        },
    };
    let storage = api.storage.clone();
    let data = tokio::task::spawn_blocking(move || tsdb_stats(&storage, limit))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Success::json(&data))
}

fn tsdb_stats(storage: &edgeprom_storage::Storage, limit: usize) -> Result<Value, ApiError> {
    use edgeprom_storage::index::{MatchType, Matcher};
    let all = Matcher::new(MatchType::Regex, "__name__", ".+")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let stats = storage.stats();
    let mut by_name: HashMap<String, u64> = HashMap::new();
    let mut pairs: HashMap<(String, String), u64> = HashMap::new();
    let mut values: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut num_series = 0u64;
    for s in storage.select(&[all], crate::params::MIN_TIME, crate::params::MAX_TIME) {
        num_series += 1;
        *by_name
            .entry(s.labels.metric_name().to_string())
            .or_default() += 1;
        for l in s.labels.iter() {
            *pairs.entry((l.name.clone(), l.value.clone())).or_default() += 1;
            values
                .entry(l.name.clone())
                .or_default()
                .insert(l.value.clone());
        }
    }
    let top = |items: Vec<(String, u64)>| -> Value {
        let mut items = items;
        items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        items.truncate(limit);
        Value::from(
            items
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
        )
    };
    let value_counts = values
        .iter()
        .map(|(k, v)| (k.clone(), v.len() as u64))
        .collect();
    let memory = values
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(|s| s.len() as u64).sum()))
        .collect();
    let num_pairs = pairs.len();
    let pair_counts = pairs
        .into_iter()
        .map(|((n, v), c)| (format!("{n}={v}"), c))
        .collect();
    Ok(json!({
        "headStats": {
            "numSeries": num_series,
            "numLabelPairs": num_pairs,
            "chunkCount": stats.chunks_created,
            "minTime": stats.min_time,
            "maxTime": stats.max_time,
        },
        "seriesCountByMetricName": top(by_name.into_iter().collect()),
        "labelValueCountByLabelName": top(value_counts),
        "memoryInBytesByLabelName": top(memory),
        "seriesCountByLabelValuePair": top(pair_counts),
    }))
}

/// `GET /api/v1/status/walreplay`: replay runs before the API starts, so it is always finished:
/// `current` equals `max`, the newest WAL segment present.
pub(crate) async fn walreplay(State(api): State<Arc<Api>>) -> ApiResult {
    let segments: Vec<u32> = std::fs::read_dir(api.storage.dir().join("wal"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default();
    let min = segments.iter().copied().min().unwrap_or(0);
    let max = segments.iter().copied().max().unwrap_or(0);
    Ok(Success::json(
        &json!({"min": min, "max": max, "current": max}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_url_follows_prometheus() {
        let opts = GlobalUrlOptions::new("0.0.0.0:9090", "https://edge1.example:443/prom");
        let o = opts.as_ref();
        assert_eq!(o.map(|o| o.authority.as_str()), Some("edge1.example:443"));
        // Localhost on another port: only the host changes.
        assert_eq!(
            global_url("http://127.0.0.1:9100/metrics", o),
            "http://edge1.example:9100/metrics"
        );
        assert_eq!(
            global_url("http://localhost:9100/metrics?x=1", o),
            "http://edge1.example:9100/metrics?x=1"
        );
        assert_eq!(
            global_url("http://[::1]:9/m", o),
            "http://edge1.example:9/m"
        );
        assert_eq!(
            global_url("http://localhost/m", o),
            "http://edge1.example/m"
        );
        // This server itself: the external scheme and authority.
        assert_eq!(
            global_url("http://localhost:9090/prom/metrics", o),
            "https://edge1.example:443/prom/metrics"
        );
        // Anything else is left alone, other loopback addresses too (as in Prometheus).
        assert_eq!(
            global_url("http://10.0.0.1:9100/metrics", o),
            "http://10.0.0.1:9100/metrics"
        );
        assert_eq!(
            global_url("http://127.0.0.2:9100/metrics", o),
            "http://127.0.0.2:9100/metrics"
        );
        assert_eq!(split_host_port("[::1]:80"), ("::1", "80"));
        assert_eq!(split_host_port("::1"), ("::1", ""));
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
    }
}
