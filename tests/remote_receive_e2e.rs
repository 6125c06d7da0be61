//! Receiving remote write end to end: the client of `edgeprom-remote` sends 1.0 and 2.0 batches to the real
//! binary started with `--web.enable-remote-write-receiver`, and to a real Prometheus 2.42 (the
//! Debian package) started with the same flag; what both return through `query_range` and
//! `series` is exactly what was sent, stale markers included.
//!
//! Without `prometheus` on `PATH` the Prometheus half prints why it skipped and passes, unless
//! `EDGEPROM_REQUIRE_PROMETHEUS=1`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{free_port, on_path, start, start_prometheus, temp_dir};
use edgeprom_config::{Config, RemoteWriteConfig};
use edgeprom_model::{Labels, Sample, stale_nan};
use edgeprom_remote::{BatchSeries, RemoteWriteClient, RemoteWriteMessage, WriteBatch};
use serde_json::Value;

const STEP_MS: i64 = 15_000;

fn client(url: &str, message: RemoteWriteMessage) -> RemoteWriteClient {
    let yaml = format!(
        "global:\n  external_labels: {{site: edge-1}}\nremote_write:\n  - url: {url}\n    protobuf_message: {message}\n"
    );
    let mut c = Config::parse(&yaml, Path::new("/cfg/prometheus.yml")).expect("config");
    let rw: RemoteWriteConfig = c.remote_write.remove(0);
    RemoteWriteClient::new(&rw).expect("client")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Three series named `rw_<tag>_*`, four samples 15 s apart from `t0`, the last of `gauge` a stale
/// marker; label values with unicode and characters that need escaping.
fn batch(tag: &str, t0: i64) -> WriteBatch {
    let external = Labels::from_pairs([("site", "edge-1")]);
    let mk = |name: &str, extra: (&str, &str), values: [f64; 4]| BatchSeries {
        labels: edgeprom_remote::with_external_labels(
            &Labels::from_pairs([
                ("__name__", format!("rw_{tag}_{name}")),
                ("job", "edge".to_string()),
                (extra.0, extra.1.to_string()),
            ]),
            &external,
        ),
        samples: values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                t: t0 + i as i64 * STEP_MS,
                v,
            })
            .collect(),
        ..Default::default()
    };
    WriteBatch {
        series: vec![
            mk(
                "counter_total",
                ("path", "/api/v1/ü"),
                [1.0, 2.5, 4.0, 1e-9],
            ),
            mk(
                "gauge",
                ("quote", "a \"quoted\" \\ value"),
                [-3.25, 0.0, 7.0, stale_nan()],
            ),
            mk(
                "ratio",
                ("zone", "日本"),
                [0.1, 0.2, 0.30000000000000004, 1e300],
            ),
        ],
        metadata: vec![],
    }
}

/// `query_range` of `{__name__=~"rw_<tag>_.*"}` from `t0` over six steps: labels → points.
async fn range(
    base: &str,
    tag: &str,
    t0: i64,
) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
    let c = reqwest::Client::new();
    let v: Value = c
        .get(format!("{base}/api/v1/query_range"))
        .query(&[
            ("query", format!("{{__name__=~\"rw_{tag}_.*\"}}")),
            ("start", format!("{}", t0 as f64 / 1000.0)),
            ("end", format!("{}", (t0 + 6 * STEP_MS) as f64 / 1000.0)),
            ("step", "15s".to_string()),
        ])
        .send()
        .await
        .expect("query_range")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("body");
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for r in v["data"]["result"].as_array().expect("result") {
        let labels: BTreeMap<String, String> = r["metric"]
            .as_object()
            .expect("metric")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        let points = r["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().expect("t") * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().expect("v").parse().expect("number");
                (t, v)
            })
            .collect();
        out.insert(labels, points);
    }
    out
}

/// What `batch` should read back as: every sample at its step, the stale marker ending the gauge
/// (no lookback past it) and the other series carried forward by the 5 m lookback to the end.
fn expected(b: &WriteBatch, t0: i64) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in &b.series {
        let labels = s
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let mut points = Vec::new();
        let mut last = None;
        for step in 0..=6 {
            let t = t0 + step * STEP_MS;
            if let Some(x) = s.samples.iter().find(|x| x.t == t) {
                last = Some(x.v);
            }
            match last {
                Some(v) if !edgeprom_model::is_stale_nan(v) => points.push((t, v)),
                _ => {}
            }
        }
        out.insert(labels, points);
    }
    out
}

async fn series(base: &str, tag: &str) -> Vec<BTreeMap<String, String>> {
    let v: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/series"))
        .query(&[("match[]", format!("{{__name__=~\"rw_{tag}_.*\"}}"))])
        .send()
        .await
        .expect("series")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("body");
    let mut out: Vec<BTreeMap<String, String>> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            m.as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn labels_of(b: &WriteBatch) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = b
        .series
        .iter()
        .map(|s| {
            s.labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect()
        })
        .collect();
    out.sort();
    out
}

fn bits(m: &BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>) -> Vec<(String, Vec<(i64, u64)>)> {
    m.iter()
        .map(|(l, p)| {
            (
                format!("{l:?}"),
                p.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edgeprom_receives_v1_and_v2() {
    let dir = temp_dir("rw-receiver");
    let config = dir.join("edgeprom.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("config");
    let ep = start(&dir, &config, &["--web.enable-remote-write-receiver"]).await;
    let url = format!("{}/api/v1/write", ep.base);
    let t0 = (now_ms() - 10 * 60 * 1000) / STEP_MS * STEP_MS;

    for (tag, message) in [
        ("v1", RemoteWriteMessage::V1),
        ("v2", RemoteWriteMessage::V2),
    ] {
        let c = client(&url, message);
        let b = batch(tag, t0);
        let stats = c.send(&b).await.expect("sent");
        assert_eq!(stats.samples, 12, "{tag}");
        assert!(
            stats.confirmed,
            "{tag}: edgeprom sends the -Written headers"
        );
        assert_eq!(c.message(), message, "{tag}: no fallback against edgeprom");
        assert_eq!(series(&ep.base, tag).await, labels_of(&b), "{tag}");
        assert_eq!(
            bits(&range(&ep.base, tag, t0).await),
            bits(&expected(&b, t0)),
            "{tag}"
        );
        // The same batch again is refused like Prometheus refuses it (its samples are older than
        // the series' newest): a 400 the sender must not retry, and nothing changes.
        let e = c.send(&b).await.expect_err("resend");
        assert!(!e.is_retryable(), "{tag}: {e}");
        assert_eq!(
            bits(&range(&ep.base, tag, t0).await),
            bits(&expected(&b, t0)),
            "{tag}"
        );
    }

    // An out-of-order 2.0 write is a 400 that must not be retried.
    let c = client(&url, RemoteWriteMessage::V2);
    let old = WriteBatch {
        series: vec![BatchSeries {
            labels: Labels::from_pairs([("__name__", "rw_v2_gauge"), ("job", "edge")]),
            samples: vec![Sample {
                t: t0 - STEP_MS,
                v: 1.0,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    c.send(&old)
        .await
        .expect("a new series accepts an old sample");
    let e = c
        .send(&WriteBatch {
            series: vec![BatchSeries {
                samples: vec![Sample {
                    t: t0 - 2 * STEP_MS,
                    v: 1.0,
                }],
                ..old.series[0].clone()
            }],
            metadata: vec![],
        })
        .await
        .expect_err("out of order");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("out of order sample"), "{e}");
    drop(ep);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_2_accepts_our_v1_and_makes_v2_fall_back() {
    let Some(bin) = on_path("prometheus") else {
        let msg = "remote_write_e2e: `prometheus` is not on PATH; install Prometheus 2.x \
                   (Debian: apt-get install prometheus) to check it accepts edgeprom's requests";
        if std::env::var("EDGEPROM_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1") {
            panic!("{msg} (EDGEPROM_REQUIRE_PROMETHEUS=1 makes this a failure)");
        }
        let _ = writeln!(std::io::stderr(), "SKIPPED {msg}");
        return;
    };
    let dir = temp_dir("rw-prometheus");
    let prom = start_prometheus(
        &bin,
        &dir,
        &dir.join("data"),
        free_port(),
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    let url = format!("{}/api/v1/write", prom.base);
    let t0 = (now_ms() - 10 * 60 * 1000) / STEP_MS * STEP_MS;

    let v1 = client(&url, RemoteWriteMessage::V1);
    let b = batch("v1", t0);
    v1.send(&b).await.expect("Prometheus accepts our 1.0");
    assert_eq!(series(&prom.base, "v1").await, labels_of(&b));
    assert_eq!(
        bits(&range(&prom.base, "v1", t0).await),
        bits(&expected(&b, t0))
    );

    // Prometheus 2.x does not know 2.0: it decodes the request as an empty 1.0 one and answers
    // 204 without -Written headers; the client must take that as 415 and resend as 1.0.
    let v2 = client(&url, RemoteWriteMessage::V2);
    let b = batch("v2", t0);
    v2.send(&b).await.expect("resent as 1.0");
    assert_eq!(v2.message(), RemoteWriteMessage::V1);
    assert_eq!(series(&prom.base, "v2").await, labels_of(&b));
    assert_eq!(
        bits(&range(&prom.base, "v2", t0).await),
        bits(&expected(&b, t0))
    );
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
}
