//! Block write and select+decode throughput on a Dynamo-shaped one-hour corpus (~5,000 series at
//! 2/5/6/10 s). Prints bytes per sample including the index, and the per-file split, once.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgeprom_storage::block::{Block, INDEX_FILE, META_FILE, SAMPLES_FILE, write_block};
use edgeprom_storage::index::{MatchType, Matcher};

#[path = "../src/block/corpus.rs"]
#[allow(dead_code)]
mod corpus;

fn bench(c: &mut Criterion) {
    let data: Vec<_> = corpus::dynamo_hour(7, 21)
        .into_iter()
        .map(|(l, _, s)| (l, s))
        .collect();
    let samples: u64 = data.iter().map(|s| s.1.len() as u64).sum();
    let (mint, maxt) = (corpus::START_MS, corpus::START_MS + corpus::HOUR_MS);
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write_block(dir.path(), data.iter().cloned(), mint, maxt, 1, Vec::new())
        .expect("write_block");
    let block = Block::open(&dir.path().join(&meta.id)).expect("open");
    let size = |f: &str| std::fs::metadata(block.dir().join(f)).map_or(0, |m| m.len());
    eprintln!(
        "block: {} series, {samples} samples, {:.3} bytes/sample including index \
         (index {} B = {:.3} B/sample, samples {} B = {:.3} B/sample, meta.json {} B)",
        meta.num_series,
        block.size_bytes() as f64 / samples as f64,
        size(INDEX_FILE),
        size(INDEX_FILE) as f64 / samples as f64,
        size(SAMPLES_FILE),
        size(SAMPLES_FILE) as f64 / samples as f64,
        size(META_FILE),
    );

    let mut g = c.benchmark_group("block");
    g.sample_size(10);
    g.throughput(Throughput::Elements(samples));
    g.bench_function("write", |b| {
        b.iter(|| {
            let d = tempfile::tempdir().expect("tempdir");
            black_box(
                write_block(d.path(), data.iter().cloned(), mint, maxt, 1, Vec::new())
                    .expect("write"),
            )
        })
    });
    g.bench_function("select_all_decode", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for s in block.select(&[], mint, maxt) {
                n += s.samples().count() as u64;
            }
            assert_eq!(n, samples);
            n
        })
    });
    let m = Matcher::new(
        MatchType::Equal,
        "__name__",
        "dynamo_request_duration_seconds_bucket",
    )
    .expect("matcher");
    let one: u64 = block
        .select(std::slice::from_ref(&m), mint, maxt)
        .iter()
        .map(|s| s.samples().count() as u64)
        .sum();
    g.throughput(Throughput::Elements(one));
    g.bench_function("select_one_metric_decode", |b| {
        b.iter(|| {
            block
                .select(std::slice::from_ref(&m), mint, maxt)
                .iter()
                .map(|s| s.samples().count())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
