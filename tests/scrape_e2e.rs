//! The real binary scrapes three loopback targets at different intervals — a healthy one, one that
//! hangs, one that serves a malformed body — and its own `/metrics` shows each scraped at its own
//! interval, the hanging one timed out without delaying the others, and `up` right for each.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{metric, one_second_intervals, self_metrics, start, temp_dir};

const GOOD_BODY: &str = "# HELP dynamo_frontend_inflight_requests Inflight requests\n\
# TYPE dynamo_frontend_inflight_requests gauge\n\
dynamo_frontend_inflight_requests{model=\"qwen\"} 3\n";

const BAD_BODY: &str = "ok_metric 1\nthis is { not exposition\n";

/// Serves `body` after `delay` on a loopback port, counting requests.
async fn target(body: &'static str, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                ([("content-type", "text/plain; version=0.0.4")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_at_its_own_interval_hanging_and_malformed_isolated() {
    let (good, good_hits) = target(GOOD_BODY, Duration::ZERO).await;
    // Hangs far longer than its 1 s timeout (and than the whole test).
    let (hang, hang_hits) = target(GOOD_BODY, Duration::from_secs(30)).await;
    let (bad, bad_hits) = target(BAD_BODY, Duration::ZERO).await;

    let dir = temp_dir("scrape");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 10s\n\
             scrape_configs:\n\
             \x20 - job_name: good\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{good}']}}]\n\
             \x20 - job_name: hang\n    scrape_interval: 2s\n    scrape_timeout: 1s\n    static_configs: [{{targets: ['{hang}']}}]\n\
             \x20 - job_name: bad\n    scrape_interval: 3s\n    static_configs: [{{targets: ['{bad}']}}]\n"
        ),
    )
    .unwrap();

    let ep = start(&dir, &config, &[]).await;
    // Long enough for ≥ 2 scrapes of the slowest (3 s) job after its start offset (< 3 s).
    tokio::time::sleep(Duration::from_millis(9500)).await;
    let m = self_metrics(&ep).await;

    let scrapes = |job: &str| {
        metric(
            &m,
            &["edgeprom_target_scrapes_total{", &format!("job=\"{job}\"")],
        )
        .unwrap_or(0.0)
    };
    let (g, h, b) = (scrapes("good"), scrapes("hang"), scrapes("bad"));
    assert!(
        (7.0..=10.0).contains(&g),
        "good (1s) scraped {g} times in 9.5s"
    );
    assert!(
        (3.0..=5.0).contains(&h),
        "hang (2s) scraped {h} times in 9.5s"
    );
    assert!(
        (2.0..=4.0).contains(&b),
        "bad (3s) scraped {b} times in 9.5s"
    );
    // The binary's view agrees with what the targets saw.
    assert!((good_hits.load(Ordering::SeqCst) as f64 - g).abs() <= 1.0);
    assert!((hang_hits.load(Ordering::SeqCst) as f64 - h).abs() <= 1.0);
    assert!((bad_hits.load(Ordering::SeqCst) as f64 - b).abs() <= 1.0);

    let up = |job: &str| metric(&m, &["edgeprom_target_up{", &format!("job=\"{job}\"")]);
    assert_eq!(up("good"), Some(1.0));
    assert_eq!(up("hang"), Some(0.0));
    assert_eq!(up("bad"), Some(0.0));

    // The hanging target was cut off at its 1 s timeout…
    let hang_duration = metric(
        &m,
        &[
            "edgeprom_target_last_scrape_duration_seconds{",
            "job=\"hang\"",
        ],
    )
    .unwrap();
    assert!(
        (0.95..1.5).contains(&hang_duration),
        "hanging scrape took {hang_duration}s"
    );
    // …and never delayed the 1 s job: every one of its intervals is within 10 % of 1 s.
    let (count, within, early) = one_second_intervals(&m);
    assert!(
        count >= 6.0,
        "only {count} intervals observed for the 1s job"
    );
    assert_eq!(within, count, "some 1s intervals were longer than 1.1s");
    assert_eq!(early, 0.0, "some 1s intervals were shorter than 0.9s");

    let failures = |job: &str| {
        metric(
            &m,
            &[
                "edgeprom_target_scrape_failures_total{",
                &format!("job=\"{job}\""),
            ],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(failures("good"), 0.0);
    assert_eq!(
        failures("bad"),
        b,
        "every scrape of the malformed body must fail"
    );
}
