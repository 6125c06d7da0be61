//! Resharding against a receiver too slow for one shard: more shards start, and every series still
//! arrives complete, in order, without a sample sent twice. In its own test binary so that the
//! other queue tests do not share the two cores while the shard count is measured.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use edgeprom_config::Config;
use edgeprom_remote::{RemoteMetrics, RemoteWrite};
use edgeprom_storage::{Options, Storage};
use support::{append, receiver};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_gets_more_shards_and_still_every_sample_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path(), Options::default()).unwrap());
    let (url, received) = receiver(Box::new(|_| StatusCode::NO_CONTENT)).await;
    // Every request takes 40 ms: one shard sends at most 250 samples/s of 10-sample requests,
    // while 400 samples/s come in.
    let slow = Router::new().route(
        "/write",
        post(move |body: Bytes| {
            let url = url.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(40)).await;
                let r = reqwest::Client::new().post(url).body(body).send().await;
                r.map_or(StatusCode::BAD_GATEWAY, |r| r.status())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/write", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let yaml = format!(
        "remote_write:\n  - url: {slow_url}\n    name: q\n    queue_config:\n      min_shards: 1\n      \
         max_shards: 6\n      max_samples_per_send: 10\n      batch_send_deadline: 20ms\n"
    );
    let cfg = Config::parse(&yaml, Path::new("/cfg/prometheus.yml")).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let remote = RemoteWrite::new(
        storage.clone(),
        RemoteMetrics::register(&mut registry),
        Duration::from_secs(30),
        None,
    );
    remote
        .apply_config(&cfg.remote_write, &cfg.global.external_labels)
        .await
        .unwrap();
    // 40 samples every 100 ms for 14 s: one shard falls behind, and the check at 10 s empties it
    // (≈6 s) and reshards.
    // Paced by an interval that catches up, so a slow machine still appends 400 samples/s on
    // average (a plain sleep after each append would lower the rate and the shards needed).
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // Shards go up while samples come in faster than one shard sends, and back down to
    // `min_shards` once they stop: the most seen is what shows the resharding.
    let shards = |registry: &prometheus_client::registry::Registry| -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text.lines()
            .find(|l| l.starts_with("prometheus_remote_storage_shards{"))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0)
    };
    let mut most = 0.0f64;
    for k in 0..140 {
        tick.tick().await;
        append(&storage, 1 + k, 1);
        most = most.max(shards(&registry));
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while received
        .series
        .lock()
        .unwrap()
        .values()
        .map(Vec::len)
        .sum::<usize>()
        < 40 * 140
        && Instant::now() < deadline
    {
        most = most.max(shards(&registry));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    remote.stop().await;
    assert!(most > 1.0, "never resharded above one shard");
    let series = received.series.lock().unwrap();
    let want: Vec<i64> = (1..=140).map(|t| t * 1000).collect();
    for (labels, ts) in series.iter() {
        assert_eq!(ts, &want, "{labels}");
    }
}
