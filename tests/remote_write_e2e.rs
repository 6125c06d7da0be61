//! The real binary scrapes loopback targets and forwards every sample with `remote_write` to real
//! receivers: Prometheus 2.x (`--web.enable-remote-write-receiver`) and VictoriaMetrics
//! (`/api/v1/write`). The receivers' query APIs must return the same series and samples as
//! edgeprom's own, with external labels attached, relabel-dropped series absent and stale markers
//! forwarded.
//!
//! The outage test stops the receiver, kills edgeprom with SIGKILL during the outage and starts it
//! again, then brings the receiver back: every sample scraped meanwhile must arrive, in order, with
//! none refused (Prometheus refuses a resent sample older than a series' newest).
//!
//! Without `prometheus` / `victoria-metrics` on `PATH` the tests print why they skipped and pass,
//! unless `EDGEPROM_REQUIRE_PROMETHEUS=1` / `EDGEPROM_REQUIRE_VICTORIAMETRICS=1` (CI sets both and
//! installs the Debian packages).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use common::{
    Edgeprom, External, free_port, metric, on_path, self_metrics, start, start_external,
    start_prometheus, temp_dir,
};
use serde_json::Value;

/// The binary, or `None` after explaining the skip (a failure when `require_env` is set).
fn binary(name: &str, require_env: &str, package: &str) -> Option<PathBuf> {
    let found = on_path(name);
    if found.is_none() {
        let msg = format!(
            "remote_write_e2e: `{name}` is not on PATH; install it (Debian: apt-get install {package})"
        );
        assert!(std::env::var_os(require_env).is_none(), "{msg}");
        eprintln!("{msg}; skipping");
    }
    found
}

async fn start_victoriametrics(bin: &Path, dir: &Path) -> External {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!(
            "-storageDataPath={}",
            dir.join("vm-data").display()
        ))
        .arg("-retentionPeriod=100y")
        // Recent points are otherwise hidden for 30 s, and answers cached.
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache");
    start_external(cmd, port, "/health", dir.join("victoriametrics.log")).await
}

/// Two targets whose counters grow by one per scrape; one also serves a series that goes away
/// after a few scrapes (so edgeprom writes a stale marker) and label values with `,` `=` `}`.
async fn targets() -> Vec<String> {
    let mut addrs = Vec::new();
    for name in ["frontend", "worker"] {
        let n = Arc::new(AtomicU64::new(0));
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let k = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    let mut body = format!(
                        "# TYPE dynamo_requests counter\n\
                         dynamo_requests_total{{component=\"{name}\",route=\"a,b=c}}\"}} {k}\n\
                         dynamo_requests_total{{component=\"{name}\",route=\"/v1\"}} {}\n\
                         # TYPE gpu_temp gauge\n\
                         gpu_temp{{gpu=\"0\"}} {}\n",
                        k * 3,
                        40.25 + (k % 7) as f64 * 0.5,
                    );
                    if k < 3 {
                        body.push_str("flappy_series 1\n");
                    }
                    ([("content-type", "text/plain; version=0.0.4")], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap().to_string());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    addrs
}

fn config(targets: &[String], urls: &[(&str, String)]) -> String {
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    edge: node-1\n\
         scrape_configs:\n  - job_name: dynamo\n    static_configs:\n      - targets: [{list}]\n\
         remote_write:\n"
    );
    for (name, url) in urls {
        s.push_str(&format!(
            "  - url: {url}\n    name: {name}\n    queue_config:\n      batch_send_deadline: 200ms\n      \
             min_backoff: 50ms\n      max_backoff: 500ms\n    write_relabel_configs:\n      \
             - source_labels: [__name__]\n        regex: scrape_samples_post_metric_relabeling\n        \
             action: drop\n"
        ));
    }
    s
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

type Series = BTreeMap<String, Vec<(i64, String)>>;

/// Every raw sample in `(at - window, at]` of `selector`, keyed by the label set without
/// `drop_labels`.
async fn raw(
    base: &str,
    selector: &str,
    window_s: i64,
    at_ms: i64,
    drop_labels: &[&str],
) -> Series {
    let resp: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[
            ("query", format!("{selector}[{window_s}s]")),
            ("time", format!("{:.3}", at_ms as f64 / 1000.0)),
        ])
        .send()
        .await
        .expect("query")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("body");
    assert_eq!(resp["status"], "success", "{base}: {resp}");
    let mut out = Series::new();
    for s in resp["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let labels: BTreeMap<String, String> = s["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !drop_labels.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let points = s["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap_or_default() * 1000.0).round() as i64;
                let v = p[1].as_str().unwrap_or_default().to_string();
                (t, v)
            })
            .collect();
        out.insert(format!("{labels:?}"), points);
    }
    out
}

fn count(s: &Series) -> usize {
    s.values().map(Vec::len).sum()
}

/// Polls until `receiver` holds exactly what edgeprom holds for the window (at most `limit`).
async fn wait_equal(
    ep: &Edgeprom,
    receiver: &str,
    window_s: i64,
    at_ms: i64,
    limit: Duration,
) -> (Series, Series) {
    let selector = "{job=\"dynamo\",__name__!=\"scrape_samples_post_metric_relabeling\"}";
    let want = raw(&ep.base, selector, window_s, at_ms, &[]).await;
    let deadline = Instant::now() + limit;
    loop {
        let mut got = raw(receiver, selector, window_s, at_ms, &["edge"]).await;
        // VictoriaMetrics returns a stored stale marker as a NaN point where Prometheus (and
        // edgeprom) leave it out of a range selection.
        for points in got.values_mut() {
            points.retain(|(_, v)| v != "NaN");
        }
        if got == want || Instant::now() > deadline {
            return (want, got);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn diff(want: &Series, got: &Series) -> String {
    let mut out = String::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push_str(&format!("missing {k} ({} samples)\n", v.len())),
            Some(g) if g != v => out.push_str(&format!("{k}: want {v:?}\n  got {g:?}\n")),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        out.push_str(&format!("unexpected {k}\n"));
    }
    out
}

async fn instant(base: &str, query: &str) -> Vec<Value> {
    let resp: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .expect("query")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("body");
    resp["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_the_same_series_and_samples_to_prometheus_and_victoriametrics() {
    let Some(prom) = binary("prometheus", "EDGEPROM_REQUIRE_PROMETHEUS", "prometheus") else {
        return;
    };
    let Some(vm) = binary(
        "victoria-metrics",
        "EDGEPROM_REQUIRE_VICTORIAMETRICS",
        "victoria-metrics",
    ) else {
        return;
    };
    let dir = temp_dir("remote-write");
    let prometheus = start_prometheus(
        &prom,
        &dir,
        &dir.join("prometheus-data"),
        free_port(),
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    let victoria = start_victoriametrics(&vm, &dir).await;
    let targets = targets().await;
    let cfg = dir.join("edgeprom.yml");
    std::fs::write(
        &cfg,
        config(
            &targets,
            &[
                ("prom", format!("{}/api/v1/write", prometheus.base)),
                ("vm", format!("{}/api/v1/write", victoria.base)),
            ],
        ),
    )
    .unwrap();
    let ep = start(&dir, &cfg, &[]).await;
    let began = now_ms();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let at = now_ms() - 500;
    let window = (at - began) / 1000 + 2;
    let mut newest = 0;

    for (name, base) in [
        ("prometheus", &prometheus.base),
        ("victoriametrics", &victoria.base),
    ] {
        let (want, got) = wait_equal(&ep, base, window, at, Duration::from_secs(20)).await;
        assert!(count(&want) >= 40, "too little scraped: {want:?}");
        newest = want.values().flatten().map(|(t, _)| *t).max().unwrap_or(0);
        assert!(
            want.keys().any(|k| k.contains("a,b=c}")),
            "label value with , = }} kept: {want:?}"
        );
        assert_eq!(
            got,
            want,
            "{name} differs from edgeprom:\n{}",
            diff(&want, &got)
        );
        // External labels attached, relabel-dropped series absent.
        let edge = instant(base, "count(up{edge=\"node-1\"})").await;
        assert_eq!(
            edge.first().map(|r| r["value"][1].clone()),
            Some("2".into()),
            "{name}"
        );
        let dropped = instant(base, "scrape_samples_post_metric_relabeling").await;
        assert!(dropped.is_empty(), "{name} got a relabel-dropped series");
    }
    // The series that went away was ended by a stale marker on the receivers too: Prometheus
    // answers nothing for it (without the marker it would answer from its last sample for 5
    // minutes), VictoriaMetrics shows the marker as a NaN point right after the last sample.
    let vm_flappy = raw(&victoria.base, "flappy_series", window, at, &[]).await;
    assert_eq!(vm_flappy.len(), 2);
    for points in vm_flappy.values() {
        assert_eq!(points.len(), 4, "{points:?}");
        assert_eq!(points[3].1, "NaN", "stale marker forwarded: {points:?}");
    }
    let flappy = instant(&prometheus.base, "flappy_series").await;
    assert!(flappy.is_empty(), "stale marker not forwarded: {flappy:?}");
    let ever = instant(&prometheus.base, "count_over_time(flappy_series[1m])").await;
    assert_eq!(
        ever.len(),
        2,
        "flappy_series was forwarded while it existed"
    );

    let m = self_metrics(&ep).await;
    for name in ["prom", "vm"] {
        let q = format!("remote_name=\"{name}\"");
        let sent = metric(&m, &["prometheus_remote_storage_samples_total{", &q]).unwrap_or(0.0);
        assert!(sent > 0.0, "{name}: samples_total {sent}");
        assert_eq!(
            metric(&m, &["prometheus_remote_storage_samples_failed_total{", &q]),
            Some(0.0),
            "{name}"
        );
        let highest = metric(
            &m,
            &[
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds{",
                &q,
            ],
        )
        .unwrap_or(0.0);
        assert!(
            highest * 1000.0 >= newest as f64,
            "{name}: highest sent {highest}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_a_sigkill_restart_lose_and_repeat_nothing() {
    let Some(prom) = binary("prometheus", "EDGEPROM_REQUIRE_PROMETHEUS", "prometheus") else {
        return;
    };
    let dir = temp_dir("remote-write-outage");
    let port = free_port();
    // Started twice on the same data directory and port: before and after the outage.
    let data = dir.join("prometheus-data");
    let start_receiver = || {
        start_prometheus(
            &prom,
            &dir,
            &data,
            port,
            &["--web.enable-remote-write-receiver"],
        )
    };
    let receiver = start_receiver().await;
    let targets = targets().await;
    let cfg = dir.join("edgeprom.yml");
    let url = format!("{}/api/v1/write", receiver.base);
    std::fs::write(&cfg, config(&targets, &[("prom", url)])).unwrap();
    let mut ep = start(&dir, &cfg, &[]).await;
    let began = now_ms();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Receiver down (SIGKILL: it keeps what its WAL holds), edgeprom keeps scraping and is itself
    // killed and restarted during the outage.
    drop(receiver);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = self_metrics(&ep).await;
    let retried = metric(&m, &["prometheus_remote_storage_samples_retried_total{"]).unwrap_or(0.0);
    assert!(retried > 0.0, "sends were retried during the outage");
    let _ = ep.child.kill();
    let _ = ep.child.wait();
    drop(ep);
    let ep = start(&dir, &cfg, &[]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let receiver = start_receiver().await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let at = now_ms() - 500;
    let window = (at - began) / 1000 + 2;
    let (want, got) = wait_equal(&ep, &receiver.base, window, at, Duration::from_secs(30)).await;
    assert!(count(&want) >= 60, "too little scraped: {}", count(&want));
    assert_eq!(
        got,
        want,
        "receiver differs after the outage:\n{}",
        diff(&want, &got)
    );
    let m = self_metrics(&ep).await;
    assert_eq!(
        metric(&m, &["prometheus_remote_storage_samples_failed_total{"]),
        Some(0.0),
        "no batch refused"
    );
    // Prometheus counts what it refused: out-of-order samples, and requests answered 400.
    let own = reqwest::get(format!("{}/metrics", receiver.base))
        .await
        .expect("receiver metrics")
        .text()
        .await
        .expect("body");
    for line in own.lines().filter(|l| {
        l.starts_with("prometheus_tsdb_out_of_order_samples_total")
            || (l.starts_with("prometheus_http_requests_total")
                && l.contains("/api/v1/write")
                && l.contains("code=\"400\""))
    }) {
        assert!(line.ends_with(" 0"), "receiver refused samples: {line}");
    }
}
