//! Head throughput: append of known series through the `Appender` seam, select + decode, and the
//! time to reopen (WAL replay plus head-chunk scan) a directory of 1,000 series × 720 samples.
//!
//! `cargo bench -p edgeprom-storage --bench head -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edgeprom_model::{Appendable, Labels, SeriesRef};
use edgeprom_storage::index::{MatchType, Matcher};
use edgeprom_storage::{Options, Storage};

/// Samples per commit: one scrape of a mid-sized Dynamo worker.
const BATCH: usize = 1_000;
/// Samples per series in the select and reopen fixtures: an hour at a 5 s interval.
const SAMPLES_PER_SERIES: usize = 720;
const T0: i64 = 1_767_225_600_000;
const STEP_MS: i64 = 5_000;

/// Dynamo worker-shaped label sets: one histogram family's buckets per endpoint and worker.
fn series_labels(n: usize) -> Vec<Labels> {
    const LE: [&str; 12] = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    (0..n)
        .map(|i| {
            let worker = i / (LE.len() * 4);
            let endpoint =
                ["generate", "clear_kv_blocks", "load_lora", "unload_lora"][(i / LE.len()) % 4];
            let instance = format!("worker-{worker}:8081");
            Labels::from_pairs([
                (
                    "__name__",
                    "dynamo_component_request_duration_seconds_bucket",
                ),
                ("job", "dynamo-backend"),
                ("instance", instance.as_str()),
                ("dynamo_namespace", "dynamo"),
                ("dynamo_component", "backend"),
                ("dynamo_endpoint", endpoint),
                ("model", "qwen/qwen3-0.6b"),
                ("le", LE[i % LE.len()]),
            ])
        })
        .collect()
}

/// A counter-like value: mostly small integer steps, the common case for bucket series.
fn value(series: usize, step: usize) -> f64 {
    ((series * 7 + step * 3) % 50 + step * 10) as f64
}

fn open(dir: &Path) -> Storage {
    Storage::open(dir, Options::default()).expect("open storage")
}

/// Appends `steps` scrapes of all `labels` and returns the refs the scrape cache would keep.
fn fill(storage: &Storage, labels: &[Labels], steps: usize) -> Vec<SeriesRef> {
    let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
    for step in 0..steps {
        let t = T0 + step as i64 * STEP_MS;
        let mut app = storage.appender();
        for (i, l) in labels.iter().enumerate() {
            refs[i] = Some(app.append(refs[i], l, t, value(i, step)).expect("append"));
        }
        app.commit().expect("commit");
    }
    refs.into_iter().map(|r| r.expect("ref")).collect()
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_append");
    g.throughput(Throughput::Elements(BATCH as u64));
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(dir.path());
    let labels = series_labels(BATCH);
    let refs = fill(&storage, &labels, 1);
    let mut step = 1usize;
    g.bench_function("known_series_batch_1000", |b| {
        b.iter(|| {
            let t = T0 + step as i64 * STEP_MS;
            let mut app = storage.appender();
            for (i, (l, r)) in labels.iter().zip(&refs).enumerate() {
                black_box(app.append(Some(*r), l, t, value(i, step)).expect("append"));
            }
            app.commit().expect("commit");
            step += 1;
        })
    });
    g.finish();
}

fn bench_select(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_select");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(dir.path());
    let labels = series_labels(1_000);
    fill(&storage, &labels, SAMPLES_PER_SERIES);
    let matchers = [Matcher::new(MatchType::Equal, "job", "dynamo-backend").expect("matcher")];
    g.throughput(Throughput::Elements((1_000 * SAMPLES_PER_SERIES) as u64));
    g.bench_function("1000_series_x_720_decode_all", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut sum = 0.0;
            for s in storage.select(&matchers, i64::MIN, i64::MAX) {
                for (t, v) in s.samples() {
                    n += 1;
                    sum += v + t as f64;
                }
            }
            assert_eq!(n, 1_000 * SAMPLES_PER_SERIES);
            black_box(sum)
        })
    });
    g.finish();
}

fn bench_reopen(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_reopen");
    g.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let storage = open(dir.path());
        fill(&storage, &series_labels(1_000), SAMPLES_PER_SERIES);
        storage.sync().expect("sync");
    }
    g.throughput(Throughput::Elements((1_000 * SAMPLES_PER_SERIES) as u64));
    g.bench_function("1000_series_x_720", |b| {
        b.iter_batched(
            || (),
            |()| {
                let s = open(dir.path());
                assert_eq!(s.num_series(), 1_000);
                s
            },
            // Dropping (unmapping, unlocking) is not part of what a restart waits for.
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_append, bench_select, bench_reopen);
criterion_main!(benches);
