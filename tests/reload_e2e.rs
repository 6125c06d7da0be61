//! Reloading the real binary: SIGHUP and `POST /-/reload` apply a new config without a gap for
//! targets that stay, a broken config is refused and the running one keeps scraping, and
//! `file_sd_configs` files are re-read when they change.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{metric, one_second_intervals, self_metrics, start, temp_dir};

async fn target() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                ([("content-type", "text/plain; version=0.0.4")], "m 1\n")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

fn job(name: &str, interval: &str, addr: &str) -> String {
    format!(
        "  - job_name: {name}\n    scrape_interval: {interval}\n    static_configs: [{{targets: ['{addr}']}}]\n"
    )
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_targets_and_refuses_bad_configs() {
    let (a, a_hits) = target().await;
    let (b, b_hits) = target().await;
    let dir = temp_dir("reload");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, format!("scrape_configs:\n{}", job("a", "1s", &a))).unwrap();
    let ep = start(&dir, &config, &["--web.enable-lifecycle"]).await;
    let client = reqwest::Client::new();

    wait_for("job a scraped twice", Duration::from_secs(5), async || {
        a_hits.load(Ordering::SeqCst) >= 2
    })
    .await;

    // A broken config is refused over HTTP, with the file:line:col, and the old one keeps running.
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: a\n    scrape_intervall: 1s\n",
    )
    .unwrap();
    let r = client
        .post(format!("{}/-/reload", ep.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("prometheus.yml:3:5"), "{text}");
    let m = self_metrics(&ep).await;
    assert_eq!(
        metric(&m, &["prometheus_config_last_reload_successful"]),
        Some(0.0)
    );
    let before = a_hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        a_hits.load(Ordering::SeqCst) >= before + 2,
        "job a stopped after a bad reload"
    );

    // A good config adds job b over SIGHUP; job a keeps its schedule: no interval over 1.1 s.
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n{}{}",
            job("a", "1s", &a),
            job("b", "2s", &b)
        ),
    )
    .unwrap();
    let pid = ep.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(
        "job b scraped after SIGHUP",
        Duration::from_secs(5),
        async || b_hits.load(Ordering::SeqCst) >= 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = self_metrics(&ep).await;
    assert_eq!(
        metric(&m, &["prometheus_config_last_reload_successful"]),
        Some(1.0)
    );
    let (count, within, _) = one_second_intervals(&m);
    assert_eq!(within, count, "job a had a gap across the reloads");
    assert_eq!(metric(&m, &["edgeprom_target_up{", "job=\"b\""]), Some(1.0));

    // Removing job a over HTTP stops it.
    std::fs::write(&config, format!("scrape_configs:\n{}", job("b", "2s", &b))).unwrap();
    let r = client
        .post(format!("{}/-/reload", ep.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stopped_at = a_hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(
        a_hits.load(Ordering::SeqCst) <= stopped_at + 1,
        "job a still scraped after removal"
    );
    let m = self_metrics(&ep).await;
    assert_eq!(metric(&m, &["edgeprom_target_up{", "job=\"a\""]), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_endpoints_need_the_flag() {
    let (a, _) = target().await;
    let dir = temp_dir("lifecycle");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, format!("scrape_configs:\n{}", job("a", "10s", &a))).unwrap();
    let ep = start(&dir, &config, &[]).await;
    let client = reqwest::Client::new();
    for path in ["/-/reload", "/-/quit"] {
        let r = client
            .post(format!("{}{path}", ep.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = client
        .get(format!("{}/-/reload", ep.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = client
        .get(format!("{}/-/healthy", ep.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_stops_the_process() {
    let (a, _) = target().await;
    let dir = temp_dir("quit");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, format!("scrape_configs:\n{}", job("a", "10s", &a))).unwrap();
    let mut ep = start(&dir, &config, &["--web.enable-lifecycle"]).await;
    let r = reqwest::Client::new()
        .post(format!("{}/-/quit", ep.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = ep.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "edgeprom did not exit after /-/quit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_follow_the_file() {
    let (a, a_hits) = target().await;
    let (b, b_hits) = target().await;
    let dir = temp_dir("filesd");
    let targets = dir.join("targets.json");
    std::fs::write(
        &targets,
        format!("[{{\"targets\": [\"{a}\"], \"labels\": {{\"env\": \"edge\"}}}}]"),
    )
    .unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: fsd\n    scrape_interval: 1s\n    file_sd_configs:\n      - files: ['targets.json']\n",
    )
    .unwrap();
    let ep = start(&dir, &config, &[]).await;
    wait_for(
        "file_sd target a scraped",
        Duration::from_secs(5),
        async || a_hits.load(Ordering::SeqCst) >= 1,
    )
    .await;

    std::fs::write(&targets, format!("[{{\"targets\": [\"{b}\"]}}]")).unwrap();
    wait_for(
        "file_sd target b scraped after the edit",
        Duration::from_secs(6),
        async || b_hits.load(Ordering::SeqCst) >= 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped_at = a_hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        a_hits.load(Ordering::SeqCst),
        stopped_at,
        "removed target still scraped"
    );
    let m = self_metrics(&ep).await;
    assert_eq!(
        metric(
            &m,
            &[
                "prometheus_target_scrape_pool_targets{",
                "scrape_job=\"fsd\""
            ]
        ),
        Some(1.0)
    );
}
