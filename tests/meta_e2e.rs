//! The real binary scrapes a loopback OpenMetrics target carrying HELP/TYPE/UNIT and exemplars:
//! `/api/v1/metadata`, `/api/v1/targets/metadata` and `/api/v1/query_exemplars` return them in
//! Prometheus's shapes. A second start with `--web.external-url`/`--web.route-prefix` answers
//! every endpoint under the prefix only.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{spawn, start, temp_dir};
use serde_json::{Value, json};

const OM_BODY: &str = "# TYPE http_request_duration_seconds histogram\n\
# HELP http_request_duration_seconds Request latency.\n\
# UNIT http_request_duration_seconds seconds\n\
http_request_duration_seconds_bucket{le=\"0.1\"} 3 # {trace_id=\"aaa\"} 0.05 1700000000.5\n\
http_request_duration_seconds_bucket{le=\"+Inf\"} 5 # {trace_id=\"bbb\"} 0.7\n\
http_request_duration_seconds_sum 1.2\n\
http_request_duration_seconds_count 5\n\
# TYPE jobs_processed counter\n\
# HELP jobs_processed Jobs done \\\\ with \\\"quotes\\\".\n\
jobs_processed_total 7 # {trace_id=\"ccc\",span_id=\"1\"} 1\n\
# EOF\n";

/// Serves `OM_BODY` as OpenMetrics on a loopback port.
async fn om_target() -> String {
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(
                    "content-type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                OM_BODY,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn write_config(dir: &std::path::Path, target: &str) -> std::path::PathBuf {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n  - job_name: om\n    scrape_interval: 1s\n    \
             static_configs: [{{targets: ['{target}']}}]\n\
             storage:\n  exemplars:\n    max_exemplars: 1000\n"
        ),
    )
    .expect("write config");
    config
}

async fn get_json(url: &str) -> Value {
    let resp = reqwest::get(url).await.expect("GET");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).expect("JSON body")
}

/// Polls `url` (at most 15 s) until `ready` accepts its `data`.
async fn wait_for(url: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = get_json(url).await;
        if ready(&v["data"]) {
            return v["data"].clone();
        }
        assert!(Instant::now() < deadline, "{url} never became ready: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_exemplars_from_an_openmetrics_target() {
    let target = om_target().await;
    let dir = temp_dir("meta");
    let config = write_config(&dir, &target);
    let ep = start(
        &dir,
        &config,
        &[
            "--enable-feature=exemplar-storage",
            "--web.enable-lifecycle",
        ],
    )
    .await;
    let base = &ep.base;

    let metadata = wait_for(&format!("{base}/api/v1/metadata"), |d| {
        d.as_object().is_some_and(|o| !o.is_empty())
    })
    .await;
    assert_eq!(
        metadata,
        json!({
            "http_request_duration_seconds": [
                {"type": "histogram", "help": "Request latency.", "unit": "seconds"}
            ],
            "jobs_processed": [
                {"type": "counter", "help": "Jobs done \\ with \"quotes\".", "unit": ""}
            ],
        })
    );
    let one = get_json(&format!("{base}/api/v1/metadata?metric=jobs_processed")).await;
    assert_eq!(one["data"].as_object().map(|o| o.len()), Some(1), "{one}");
    let none = get_json(&format!("{base}/api/v1/metadata?limit=0")).await;
    assert_eq!(none["data"], json!({}));

    let per_target = get_json(&format!(
        "{base}/api/v1/targets/metadata?match_target=%7Bjob%3D%22om%22%7D"
    ))
    .await;
    let entries = per_target["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2, "{per_target}");
    assert_eq!(
        entries[0],
        json!({
            "target": {"instance": target, "job": "om"},
            "metric": "http_request_duration_seconds",
            "type": "histogram",
            "help": "Request latency.",
            "unit": "seconds",
        })
    );
    let other_job = get_json(&format!(
        "{base}/api/v1/targets/metadata?match_target=%7Bjob%3D%22x%22%7D"
    ))
    .await;
    assert_eq!(other_job["data"], json!([]));
    let by_metric = get_json(&format!(
        "{base}/api/v1/targets/metadata?metric=jobs_processed"
    ))
    .await;
    assert_eq!(by_metric["data"][0].get("metric"), None, "{by_metric}");
    assert_eq!(by_metric["data"][0]["type"], "counter");

    let q = |query: &str| format!("{base}/api/v1/query_exemplars?query={query}");
    let buckets = wait_for(&q("http_request_duration_seconds_bucket"), |d| {
        d.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    // Let a few more scrapes expose the same exemplars: they must not be stored again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = get_json(&q("http_request_duration_seconds_bucket")).await;
    assert_eq!(
        again["data"], buckets,
        "identical exemplars were stored twice"
    );
    let first = &buckets[0];
    assert_eq!(
        first["seriesLabels"],
        json!({
            "__name__": "http_request_duration_seconds_bucket",
            "instance": target,
            "job": "om",
            "le": "+Inf",
        })
    );
    let ex = &first["exemplars"][0];
    assert_eq!(ex["labels"], json!({"trace_id": "bbb"}));
    assert_eq!(ex["value"], "0.7");
    // Without its own timestamp the exemplar took the scrape's: a recent one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let ts = ex["timestamp"].as_f64().expect("timestamp");
    assert!((now - 60.0..=now).contains(&ts), "{ts} vs {now}");
    let explicit = &buckets[1]["exemplars"][0];
    assert_eq!(explicit["labels"]["trace_id"], "aaa");
    assert_eq!(explicit["timestamp"], json!(1700000000.5));

    let counter = get_json(&q("rate(jobs_processed_total%5B1m%5D)")).await;
    let exemplars = &counter["data"][0]["exemplars"];
    assert_eq!(exemplars.as_array().map(Vec::len), Some(1), "{counter}");
    assert_eq!(
        exemplars[0]["labels"],
        json!({"span_id": "1", "trace_id": "ccc"})
    );
    assert_eq!(exemplars[0]["value"], "1");
    // A time range before the explicit exemplar's timestamp finds nothing for it.
    let early = get_json(&format!(
        "{}&start=1600000000&end=1700000000",
        q("http_request_duration_seconds_bucket%7Ble%3D%220.1%22%7D")
    ))
    .await;
    assert_eq!(early["data"], json!([]));

    // The exemplar store reports itself under Prometheus's names.
    let metrics = common::self_metrics(&ep).await;
    assert_eq!(
        common::metric(&metrics, &["prometheus_tsdb_exemplar_max_exemplars"]),
        Some(1000.0)
    );
    assert_eq!(
        common::metric(&metrics, &["prometheus_tsdb_exemplar_exemplars_in_storage"]),
        Some(3.0)
    );

    // A reload resizes the ring, keeping the newest exemplars that fit.
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("max_exemplars: 1000", "max_exemplars: 1"),
    )
    .expect("rewrite config");
    let reload = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert!(reload.status().is_success(), "{}", reload.status());
    let metrics = common::self_metrics(&ep).await;
    assert_eq!(
        common::metric(&metrics, &["prometheus_tsdb_exemplar_max_exemplars"]),
        Some(1.0)
    );
    let all = get_json(&q("%7Bjob%3D%22om%22%7D")).await;
    let held: usize = all["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["exemplars"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(held, 1, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_are_not_kept_without_the_feature() {
    let target = om_target().await;
    let dir = temp_dir("meta-off");
    let config = write_config(&dir, &target);
    let ep = start(&dir, &config, &[]).await;
    let base = &ep.base;
    wait_for(&format!("{base}/api/v1/metadata"), |d| {
        d.as_object().is_some_and(|o| o.len() == 2)
    })
    .await;
    let ex = get_json(&format!(
        "{base}/api/v1/query_exemplars?query=http_request_duration_seconds_bucket"
    ))
    .await;
    assert_eq!(ex["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_prefix_serves_everything_under_it_and_nothing_outside() {
    let target = om_target().await;
    let dir = temp_dir("meta-prefix");
    let config = write_config(&dir, &target);
    let ep = spawn(
        &dir,
        &config,
        &[
            "--web.external-url=http://proxy.example/edge/",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
        ],
        "http",
    );
    let base = &ep.base;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client.get(format!("{base}/edge/-/ready")).send().await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "not ready under /edge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = |method: reqwest::Method, path: &str| {
        let req = client.request(method, format!("{base}{path}"));
        async move { req.send().await.expect("request").status().as_u16() }
    };
    use reqwest::Method;
    for path in [
        "/-/healthy",
        "/-/ready",
        "/metrics",
        "/federate?match[]=up",
        "/api/v1/query?query=up",
        "/api/v1/metadata",
        "/api/v1/targets",
        "/api/v1/status/flags",
    ] {
        assert_eq!(
            status(Method::GET, &format!("/edge{path}")).await,
            200,
            "/edge{path}"
        );
        assert_eq!(
            status(Method::GET, path).await,
            404,
            "{path} outside the prefix"
        );
    }
    assert_eq!(
        status(Method::POST, "/edge/api/v1/admin/tsdb/snapshot").await,
        200
    );
    assert_eq!(
        status(Method::POST, "/api/v1/admin/tsdb/snapshot").await,
        404
    );
    assert_eq!(status(Method::POST, "/edge/-/reload").await, 200);
    assert_eq!(status(Method::POST, "/-/reload").await, 404);
    // The bare root redirects into the prefix, as Prometheus's does.
    let root = client.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(root.status().as_u16(), 302);
    assert_eq!(
        root.headers().get("location").and_then(|l| l.to_str().ok()),
        Some("/edge")
    );

    let flags = get_json(&format!("{base}/edge/api/v1/status/flags")).await;
    assert_eq!(
        flags["data"]["web.external-url"],
        "http://proxy.example/edge/"
    );
    assert_eq!(flags["data"]["web.route-prefix"], "");
    // A loopback target's globalUrl names the external host, keeping the target's port.
    let port = target.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
    let targets = get_json(&format!("{base}/edge/api/v1/targets")).await;
    assert_eq!(
        targets["data"]["activeTargets"][0]["globalUrl"],
        format!("http://proxy.example:{port}/metrics")
    );
    assert_eq!(
        status(Method::POST, "/edge/-/quit").await,
        200,
        "quit under the prefix"
    );
}
