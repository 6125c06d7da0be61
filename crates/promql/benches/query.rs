//! Dashboard-shaped queries over 10k series × 1 h of 15 s samples, instant and as 1 h range
//! queries at a 15 s step: `rate`, `sum by`, `histogram_quantile` over `sum by (le)` and over
//! every bucket series, and a one-to-one join with `on(…) group_left`.
//!
//! Run: `cargo bench -p edgeprom-promql --bench query -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use edgeprom_model::{Appendable, Labels};
use edgeprom_promql::Engine;
use edgeprom_storage::{Options, Storage};

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 240; // 1 h at 15 s
const WORKERS: usize = 100;
const MODELS: usize = 8;
const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// 100 workers × 8 models × (12 buckets + count) ≈ 10.4k series of request-duration histograms.
fn load(dir: &std::path::Path) -> Storage {
    let storage = Storage::open(dir, Options::default()).expect("open storage");
    let mut series = Vec::new();
    for w in 0..WORKERS {
        for m in 0..MODELS {
            let base = [
                ("namespace", "dynamo".to_string()),
                ("pod", format!("worker-{w}")),
                ("model", format!("model-{m}")),
            ];
            for le in BUCKETS {
                let mut l: Vec<(&str, String)> = base.to_vec();
                l.push((
                    "__name__",
                    "dynamo_frontend_request_duration_seconds_bucket".into(),
                ));
                l.push(("le", le.into()));
                series.push(Labels::from_pairs(l));
            }
            let mut l: Vec<(&str, String)> = base.to_vec();
            l.push(("__name__", "dynamo_frontend_requests_total".into()));
            series.push(Labels::from_pairs(l));
        }
    }
    let mut refs = vec![None; series.len()];
    for i in 0..SAMPLES {
        let mut app = storage.appender();
        for (j, l) in series.iter().enumerate() {
            // Cumulative buckets: higher `le` (later in the group) counts more.
            let v = (i * (1 + (j % 13) as i64)) as f64;
            refs[j] = Some(app.append(refs[j], l, i * STEP_MS, v).expect("append"));
        }
        app.commit().expect("commit");
    }
    storage
}

fn queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = load(dir.path());
    let engine = Engine::default();
    let end = (SAMPLES - 1) * STEP_MS;
    let cases = [
        ("rate", "rate(dynamo_frontend_requests_total[5m])"),
        (
            "sum_by",
            "sum by (model) (rate(dynamo_frontend_requests_total[5m]))",
        ),
        (
            "histogram_quantile",
            "histogram_quantile(0.99, sum by (le, model) (rate(dynamo_frontend_request_duration_seconds_bucket[5m])))",
        ),
        (
            "histogram_quantile_per_series",
            "histogram_quantile(0.99, rate(dynamo_frontend_request_duration_seconds_bucket[5m]))",
        ),
        (
            "join",
            "rate(dynamo_frontend_requests_total[5m]) * on(pod, model) group_left() rate(dynamo_frontend_request_duration_seconds_bucket{le=\"+Inf\"}[5m])",
        ),
    ];
    let mut g = c.benchmark_group("promql");
    g.sample_size(10);
    for (name, q) in cases {
        g.bench_function(format!("{name}/instant"), |b| {
            b.iter(|| black_box(engine.instant_query(&storage, q, end).expect("query")))
        });
        g.bench_function(format!("{name}/range_1h_15s"), |b| {
            b.iter(|| {
                black_box(
                    engine
                        .range_query(&storage, q, 0, end, STEP_MS)
                        .expect("query"),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
