//! The sender against a loopback receiver that fails on purpose: with several shards, a receiver
//! that refuses half the requests, a queue stopped mid-way and started again, and a request
//! refused for good, every series arrives complete, in order, and without a sample sent twice.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use edgeprom_config::Config;
use edgeprom_remote::{RemoteMetrics, RemoteWrite};
use edgeprom_storage::{Options, Storage};
use support::{Received, append, receiver};

mod support;

fn config(url: &str, extra: &str) -> Config {
    let yaml = format!(
        "remote_write:\n  - url: {url}\n    name: q\n    queue_config:\n      min_shards: 4\n      \
         max_shards: 4\n      max_samples_per_send: 50\n      batch_send_deadline: 20ms\n      \
         min_backoff: 5ms\n      max_backoff: 20ms\n{extra}"
    );
    Config::parse(&yaml, Path::new("/cfg/prometheus.yml")).unwrap()
}

async fn wait_for(r: &Received, samples: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let n: usize = r.series.lock().unwrap().values().map(Vec::len).sum();
        if n >= samples || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start(storage: &Arc<Storage>) -> RemoteWrite {
    let mut registry = prometheus_client::registry::Registry::default();
    RemoteWrite::new(
        storage.clone(),
        RemoteMetrics::register(&mut registry),
        Duration::from_millis(200),
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_resume_exactly_after_a_stop_while_the_receiver_refuses_half_the_requests() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path(), Options::default()).unwrap());
    // Every other request fails with 503: shards get out of step with each other.
    let (url, received) = receiver(Box::new(|n| {
        if n % 2 == 0 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::NO_CONTENT
        }
    }))
    .await;
    let cfg = config(&url, "");
    // Three rounds: run while half the requests fail, then stop while everything fails (the
    // flush deadline cuts the stop short, with shards at different points, some inside a
    // commit), append more meanwhile.
    for round in 0..3 {
        let remote = start(&storage);
        remote
            .apply_config(&cfg.remote_write, &cfg.global.external_labels)
            .await
            .unwrap();
        *received.rule.lock().unwrap() = Box::new(|n| {
            if n % 2 == 0 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::NO_CONTENT
            }
        });
        append(&storage, 1 + round * 30, 30);
        wait_for(
            &received,
            40 * (round as usize * 30 + 20),
            Duration::from_secs(10),
        )
        .await;
        *received.rule.lock().unwrap() = Box::new(|_| StatusCode::SERVICE_UNAVAILABLE);
        remote.stop().await;
    }
    append(&storage, 91, 10);
    *received.rule.lock().unwrap() = Box::new(|_| StatusCode::NO_CONTENT);
    let remote = start(&storage);
    remote
        .apply_config(&cfg.remote_write, &cfg.global.external_labels)
        .await
        .unwrap();
    append(&storage, 101, 10);
    wait_for(&received, 40 * 110, Duration::from_secs(20)).await;
    remote.stop().await;

    let series = received.series.lock().unwrap();
    assert_eq!(series.len(), 40);
    let want: Vec<i64> = (1..=110).map(|t| t * 1000).collect();
    for (labels, ts) in series.iter() {
        assert_eq!(ts, &want, "{labels}: every sample once, in order");
    }
    assert!(received.requests.load(Ordering::SeqCst) > 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_for_good_is_dropped_and_later_ones_still_go() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path(), Options::default()).unwrap());
    // The first request is refused with 400 (not retried); the rest are accepted.
    let (url, received) = receiver(Box::new(|n| {
        if n == 0 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::NO_CONTENT
        }
    }))
    .await;
    let cfg = config(
        &url,
        "    write_relabel_configs:\n      - source_labels: [i]\n        regex: '1.'\n        action: drop\n",
    );
    let remote = start(&storage);
    remote
        .apply_config(&cfg.remote_write, &cfg.global.external_labels)
        .await
        .unwrap();
    append(&storage, 1, 20);
    // 30 series after relabelling (i = 10..19 dropped) × 20 samples, minus one refused request.
    wait_for(&received, 30 * 20 - 50, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    remote.stop().await;
    let series = received.series.lock().unwrap();
    assert_eq!(series.len(), 30);
    for i in 10..20 {
        let dropped = format!("i=\"{i}\"");
        assert!(!series.keys().any(|k| k.contains(&dropped)), "relabel drop");
    }
    let total: usize = series.values().map(Vec::len).sum();
    assert!((30 * 20 - 50..30 * 20).contains(&total), "{total}");
    for ts in series.values() {
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "in order: {ts:?}");
    }
}
