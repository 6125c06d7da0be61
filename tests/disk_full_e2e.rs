//! The real binary on a size-limited tmpfs: the disk fills up while it scrapes, compacts 2 s blocks
//! and answers queries. It must not crash, keep answering queries from what it stored, lose none of
//! it, refuse a snapshot cleanly, start again while still full (`kill -9` first), and store again
//! once space returns — also across another `kill -9` restart.
//!
//! Mounting a tmpfs needs root; where the machine cannot, the test says so and checks nothing,
//! unless `EDGEPROM_REQUIRE_TMPFS=1`.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use common::{Edgeprom, metric, self_metrics, spawn, temp_dir};
use serde_json::Value;

#[path = "../storage/tests/support/tmpfs.rs"]
mod tmpfs;

use tmpfs::Tmpfs;

/// 300 series whose values follow the scrape count.
async fn target() -> String {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let mut body = String::from("# TYPE disk_full_requests counter\n");
                for i in 0..300 {
                    body.push_str(&format!(
                        "disk_full_requests_total{{worker=\"w{i}\",model=\"llama-3-70b-instruct\"}} {}\n",
                        k * 7 + i
                    ));
                }
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let r = client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Every raw sample of `up` and the target's series in `(at - window, at]`, as text.
async fn raw(ep: &Edgeprom, at_ms: i64, window_s: i64) -> Vec<(String, Vec<(i64, String)>)> {
    let client = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/query?query={}&time={:.3}",
        ep.base,
        urlencode(&format!("{{job=\"t\"}}[{window_s}s]")),
        at_ms as f64 / 1000.0
    );
    let v = get_json(&client, &url).await.expect("query");
    let mut out: Vec<(String, Vec<(i64, String)>)> = v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64,
                        p[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            (s["metric"].to_string(), points)
        })
        .collect();
    out.sort();
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn wait_ready(ep: &mut Edgeprom) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = ep.child.try_wait() {
            panic!(
                "edgeprom exited with {status}; log:\n{}",
                std::fs::read_to_string(ep.dir.join("edgeprom.log")).unwrap_or_default()
            );
        }
        if reqwest::get(format!("{}/-/ready", ep.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edgeprom not ready");
}

/// Newest `up` sample time, in ms.
async fn newest_up(ep: &Edgeprom) -> i64 {
    let client = reqwest::Client::new();
    let v = get_json(
        &client,
        &format!("{}/api/v1/query?query=timestamp(up)", ep.base),
    )
    .await
    .expect("query");
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |s| (s * 1000.0) as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_scrapes_and_queries_loses_nothing_and_ingestion_resumes() {
    let dir = temp_dir("disk-full");
    // The data directory itself is the tmpfs (the filler file sits beside the storage's files).
    let Some(fs) = Tmpfs::mount(dir.join("data"), "48m") else {
        let msg = "disk_full_e2e: cannot mount a size-limited tmpfs here (needs root)";
        assert!(
            std::env::var_os("EDGEPROM_REQUIRE_TMPFS").is_none(),
            "{msg}"
        );
        eprintln!("{msg}; nothing checked");
        return;
    };
    let addr = target().await;
    let cfg = dir.join("edgeprom.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    // Blocks of 2 s: head compactions and WAL checkpoints run every second, so the fill hits them
    // as well as the WAL and head-chunk writes.
    let flags = [
        "--storage.tsdb.min-block-duration=2s",
        "--web.enable-admin-api",
    ];
    let mut ep = spawn(&dir, &cfg, &flags, "http");
    wait_ready(&mut ep).await;
    let began = now_ms();
    // Long enough for head compactions to write blocks before the fill.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Fill the file system to the last byte.
    let before_fill = now_ms() - 1500;
    let stored_before = raw(&ep, before_fill, (before_fill - began) / 1000 + 2).await;
    assert!(stored_before.len() >= 300, "scraped before the fill");
    let filler = fs.fill("filler");

    // Full for 4 s: scrapes fail to commit, queries and health keep answering.
    let client = reqwest::Client::new();
    let full_until = Instant::now() + Duration::from_secs(4);
    let mut queries = 0;
    while Instant::now() < full_until {
        assert!(ep.child.try_wait().unwrap().is_none(), "edgeprom died");
        let h = client
            .get(format!("{}/-/healthy", ep.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("healthy");
        assert!(h.status().is_success());
        let q = get_json(
            &client,
            &format!(
                "{}/api/v1/query_range?query=sum(rate(disk_full_requests_total[5s]))&start={}&end={}&step=1",
                ep.base,
                began / 1000,
                now_ms() / 1000
            ),
        )
        .await;
        assert!(q.is_ok(), "query while full: {q:?}");
        queries += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(queries > 5);
    // The scrapes did hit the full disk, and said so.
    let log = std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
    assert!(
        log.contains("No space left on device") || log.contains("os error 28"),
        "no ENOSPC seen; log:\n{log}"
    );
    let after_full = raw(&ep, before_fill, (before_fill - began) / 1000 + 2).await;
    assert_eq!(
        after_full, stored_before,
        "what was stored before the fill is unchanged"
    );

    // A snapshot while full fails with Prometheus's error JSON and leaves nothing behind.
    let snapshot = |ep_base: String| async move {
        let r = reqwest::Client::new()
            .post(format!("{ep_base}/api/v1/admin/tsdb/snapshot"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("snapshot request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("snapshot body");
        let body: Value = serde_json::from_str(&text).expect("snapshot JSON");
        (status, body)
    };
    let (status, body) = snapshot(ep.base.clone()).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    let snapshots = fs.path().join("snapshots");
    let left: Vec<_> = std::fs::read_dir(&snapshots)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed snapshot left {left:?}");

    assert!(
        log.contains("head compacted"),
        "no block was written before the fill; log:\n{log}"
    );
    // Killed and restarted while the disk is still full: it starts (no SIGBUS reading its
    // preallocated head-chunk files), answers from what it stored, and keeps the data.
    let _ = ep.child.kill();
    let _ = ep.child.wait();
    drop(ep);
    let mut ep = spawn(&dir, &cfg, &flags, "http");
    wait_ready(&mut ep).await;
    let after_restart = raw(&ep, before_fill, (before_fill - began) / 1000 + 2).await;
    assert_eq!(
        after_restart, stored_before,
        "restarted on a full disk, it lost stored samples"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        ep.child.try_wait().unwrap().is_none(),
        "edgeprom died while full"
    );
    let metrics = self_metrics(&ep).await;
    let wal_failures = metric(&metrics, &["prometheus_tsdb_wal_writes_failed_total"]);
    assert!(
        wal_failures.is_some_and(|n| n >= 1.0),
        "WAL failures not counted: {wal_failures:?}"
    );

    // Space returns: ingestion resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    let freed = now_ms();
    let deadline = Instant::now() + Duration::from_secs(15);
    while newest_up(&ep).await <= freed {
        assert!(
            Instant::now() < deadline,
            "no sample stored after space returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // With space back a snapshot works, and holds the blocks.
    let (status, body) = snapshot(ep.base.clone()).await;
    assert_eq!(status, 200, "{body}");
    let name = body["data"]["name"].as_str().expect("snapshot name");
    let blocks = std::fs::read_dir(snapshots.join(name))
        .expect("snapshot directory")
        .flatten()
        .filter(|e| e.path().join("meta.json").is_file())
        .count();
    assert!(blocks >= 1, "snapshot without blocks");
    std::fs::remove_dir_all(snapshots.join(name)).unwrap();

    // And across a kill -9 restart, nothing stored is lost.
    let at = now_ms() - 1500;
    let window = (at - began) / 1000 + 2;
    let stored = raw(&ep, at, window).await;
    let log = std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    let _ = ep.child.kill();
    let _ = ep.child.wait();
    drop(ep);
    let mut ep = spawn(&dir, &cfg, &flags, "http");
    wait_ready(&mut ep).await;
    let again = raw(&ep, at, window).await;
    assert_eq!(again, stored, "kill -9 restart lost stored samples");
    drop(ep);
    drop(fs);
    let _ = std::fs::remove_dir_all(&dir);
}
