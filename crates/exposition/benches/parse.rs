//! Parse throughput: edgeprom's parser against `prometheus-parse` on the real Dynamo frontend
//! scrape and a generated ~10k-series Dynamo-shaped body. Two groups report the same runs as
//! samples/s and as bytes/s.
//!
//! `edgeprom` walks every entry and reads each sample's identity, value and timestamp (the scrape
//! cache-hit path); `edgeprom+to_labels` also builds the owned label set (the cache-miss path);
//! `prometheus-parse` is its documented use, `Scrape::parse` over the body's lines.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgeprom_exposition::{Entry, Format, Parser, testgen};

const FE_LOG: &str = include_str!("../../../fixtures/exposition/fe.log");

fn edgeprom(body: &str) -> usize {
    let mut p = Parser::new(body.as_bytes(), Format::Text).expect("utf8");
    let mut n = 0;
    while let Some(e) = p.next().expect("parses") {
        if let Entry::Series(s) = e {
            black_box((s.raw(), s.value(), s.timestamp_ms()));
            n += 1;
        }
    }
    n
}

fn edgeprom_labels(body: &str) -> usize {
    let mut p = Parser::new(body.as_bytes(), Format::Text).expect("utf8");
    let mut n = 0;
    while let Some(e) = p.next().expect("parses") {
        if let Entry::Series(s) = e {
            black_box((s.to_labels(), s.value(), s.timestamp_ms()));
            n += 1;
        }
    }
    n
}

fn prometheus_parse(body: &str) -> usize {
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .expect("prometheus-parse parses");
    black_box(&scrape);
    scrape.samples.len()
}

fn bench(c: &mut Criterion) {
    let generated = testgen::dynamo_body(10_000);
    let inputs = [("fe.log", FE_LOG), ("dynamo-10k", generated.as_str())];
    for (unit, group_name) in [(true, "samples"), (false, "bytes")] {
        let mut group = c.benchmark_group(group_name);
        for (input, body) in inputs {
            let samples = edgeprom(body) as u64;
            group.throughput(if unit {
                Throughput::Elements(samples)
            } else {
                Throughput::Bytes(body.len() as u64)
            });
            group.bench_function(format!("edgeprom/{input}"), |b| {
                b.iter(|| edgeprom(black_box(body)))
            });
            group.bench_function(format!("edgeprom+to_labels/{input}"), |b| {
                b.iter(|| edgeprom_labels(black_box(body)))
            });
            group.bench_function(format!("prometheus-parse/{input}"), |b| {
                b.iter(|| prometheus_parse(black_box(body)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
