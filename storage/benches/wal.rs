//! WAL append and replay throughput, in samples per second.
//!
//! `cargo bench -p edgeprom-storage --bench wal -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgeprom_storage::wal::{Record, SampleRecord, SyncPolicy, Wal, WalOptions, replay};

const BATCH: u64 = 1_000;
const REPLAY_BATCHES: u64 = 2_000;

/// One scrape's samples: ascending refs, one timestamp, gauge-like values.
fn batch(scrape: u64) -> Record {
    let t = 1_700_000_000_000 + scrape as i64 * 15_000;
    Record::Samples(
        (0..BATCH)
            .map(|r| SampleRecord {
                r,
                t,
                v: (r * 31 + scrape) as f64 * 0.25,
            })
            .collect(),
    )
}

fn opts(sync: SyncPolicy) -> WalOptions {
    WalOptions {
        segment_size: 128 << 20,
        sync,
    }
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_append");
    g.throughput(Throughput::Elements(BATCH));
    for (name, sync) in [
        ("never", SyncPolicy::Never),
        ("interval_1s", SyncPolicy::default()),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut wal, _) = Wal::open(dir.path(), opts(sync)).expect("open");
        let recs = [batch(1)];
        let mut n = 0u64;
        g.bench_function(format!("batch_1000_samples/{name}"), |b| {
            b.iter(|| {
                wal.log(black_box(&recs)).expect("log");
                n += 1;
                // Keep the bench's disk use bounded: start over every ~64 MiB.
                if n.is_multiple_of(6_000) {
                    let (_, last) = wal.segment_range();
                    wal.checkpoint(last, |_| false, i64::MAX)
                        .expect("checkpoint");
                }
            })
        });
    }
    g.finish();
}

fn bench_replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(dir.path(), opts(SyncPolicy::Never)).expect("open");
    for s in 0..REPLAY_BATCHES {
        wal.log(&[batch(s)]).expect("log");
    }
    wal.close().expect("close");

    let mut g = c.benchmark_group("wal_replay");
    g.throughput(Throughput::Elements(BATCH * REPLAY_BATCHES));
    g.sample_size(10);
    g.bench_function("2M_samples", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            let rep = replay(dir.path(), |r| {
                if let Record::Samples(v) = r {
                    sum += v.len() as u64;
                }
            })
            .expect("replay");
            assert_eq!(rep.samples, BATCH * REPLAY_BATCHES);
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_append, bench_replay);
criterion_main!(benches);
