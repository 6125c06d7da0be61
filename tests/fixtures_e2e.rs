//! Record → replay → query: the real binary records a loopback target for a few seconds, replays
//! the recording into a fresh data directory, and every sample read back from storage equals
//! the recorded bodies' values exactly (at the recorded scrape timestamps).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{run, temp_dir};
use edgeprom_exposition::{Entry, Format, Parser};
use edgeprom_fixtures::format::Reader;
use edgeprom_model::Labels;
use edgeprom_storage::index::{MatchType, Matcher};
use edgeprom_storage::{Options, Storage};

type Expected = BTreeMap<Labels, Vec<(i64, f64)>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_replay_query_round_trip() {
    let dir = temp_dir("fixtures-roundtrip");
    // A target whose values change every scrape, in the text format, with a label the target
    // labels override.
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                let body = format!(
                    "# TYPE reqs_total counter\nreqs_total{{path=\"/a\"}} {}\nreqs_total{{path=\"/b\"}} {}\n# TYPE temp gauge\ntemp{{job=\"inner\"}} {}\n",
                    n * 3,
                    n * n,
                    0.1 + n as f64 / 7.0
                );
                ([("content-type", "text/plain; version=0.0.4")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs:\n  - job_name: rt\n    scrape_interval: 500ms\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .expect("config");
    let rec = dir.join("rec");
    let data = dir.join("data");
    let out = tokio::task::spawn_blocking({
        let (dir, cfg, rec) = (dir.clone(), cfg.clone(), rec.clone());
        move || {
            run(
                &dir,
                &[
                    "record".into(),
                    format!("--config.file={}", cfg.display()),
                    "--duration=3s".into(),
                    format!("--out={}", rec.display()),
                ],
                Duration::from_secs(30),
            )
        }
    })
    .await
    .expect("record");
    assert!(out.contains("0 failed"), "{out}");

    // What the recording says, computed independently of the replay code.
    let mut want: Expected = BTreeMap::new();
    let mut scrapes = 0;
    for s in Reader::open(&rec.join("rt.epfix.zst")).expect("recording") {
        let s = s.expect("record");
        assert_eq!(s.status, 200);
        assert_eq!(s.label("job"), Some("rt"));
        scrapes += 1;
        let mut p = Parser::new(&s.body, Format::Text).expect("utf8");
        while let Some(e) = p.next().expect("parse") {
            if let Entry::Series(series) = e {
                let mut b = series.to_labels().to_builder();
                if let Some(j) = series.to_labels().get("job") {
                    b.set("exported_job", j.to_string());
                }
                b.set("job", "rt");
                b.set("instance", addr.to_string());
                want.entry(b.build())
                    .or_default()
                    .push((s.timestamp_ms, series.value()));
            }
        }
        let up = Labels::from_pairs([
            ("__name__", "up"),
            ("job", "rt"),
            ("instance", &addr.to_string()),
        ]);
        want.entry(up).or_default().push((s.timestamp_ms, 1.0));
    }
    assert!(scrapes >= 4, "only {scrapes} scrapes recorded");

    let out = tokio::task::spawn_blocking({
        let (dir, rec, data) = (dir.clone(), rec.clone(), data.clone());
        move || {
            run(
                &dir,
                &[
                    "replay".into(),
                    "--import".into(),
                    format!("--storage.tsdb.path={}", data.display()),
                    rec.display().to_string(),
                ],
                Duration::from_secs(30),
            )
        }
    })
    .await
    .expect("replay");
    assert!(out.contains("0 rejected"), "{out}");

    let storage = Storage::open(&data, Options::default()).expect("open storage");
    assert!(!storage.block_list().is_empty(), "replay wrote no block");
    let all = Matcher::new(MatchType::Regex, "__name__", ".+").expect("matcher");
    let mut got: Expected = BTreeMap::new();
    for s in storage.select(&[all], i64::MIN, i64::MAX) {
        got.insert(s.labels.clone(), s.samples().collect());
    }
    assert_eq!(got.len(), 4, "{:?}", got.keys().collect::<Vec<_>>());
    for (labels, samples) in &want {
        let have = got
            .get(labels)
            .unwrap_or_else(|| panic!("missing {labels}"));
        assert_eq!(have.len(), samples.len(), "{labels}");
        for (a, b) in have.iter().zip(samples) {
            assert_eq!(a.0, b.0, "{labels}");
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{labels}");
        }
    }
}
