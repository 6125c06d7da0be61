//! XOR chunk encode and decode throughput on Dynamo-shaped data.
//!
//! Each shape is 16 full chunks (120 samples each, different seeds) so that the branch predictor
//! cannot learn one chunk by heart; throughput is reported in samples/s. The compression of each
//! shape (bytes per sample, header included) is printed once before the runs.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use edgeprom_storage::chunk::{MAX_SAMPLES_PER_CHUNK, XorAppender, XorIterator};

#[path = "../src/chunk/shapes.rs"]
mod shapes;

const CHUNKS: u64 = 16;

/// A shape's name and its chunks, each chunk as its 120 samples.
type Shape = (&'static str, Vec<Vec<(i64, f64)>>);

fn data() -> Vec<Shape> {
    let n = usize::from(MAX_SAMPLES_PER_CHUNK);
    let mut by_shape: Vec<Shape> = Vec::new();
    for seed in 0..CHUNKS {
        for (i, (name, samples)) in shapes::all(seed, n).into_iter().enumerate() {
            if seed == 0 {
                by_shape.push((name, Vec::new()));
            }
            by_shape[i].1.push(samples);
        }
    }
    by_shape
}

fn encode(samples: &[(i64, f64)]) -> XorAppender {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a
}

fn bench(c: &mut Criterion) {
    let data = data();
    let samples_per_shape = CHUNKS * u64::from(MAX_SAMPLES_PER_CHUNK);
    for (name, chunks) in &data {
        let bytes: usize = chunks.iter().map(|s| encode(s).bytes().len()).sum();
        eprintln!(
            "{name:>16}: {:.3} bytes/sample ({} bytes per 120-sample chunk)",
            bytes as f64 / samples_per_shape as f64,
            bytes as u64 / CHUNKS
        );
    }

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(samples_per_shape));
    for (name, chunks) in &data {
        g.bench_with_input(BenchmarkId::from_parameter(name), chunks, |b, chunks| {
            b.iter(|| {
                let mut len = 0;
                for s in chunks {
                    len += encode(black_box(s)).bytes().len();
                }
                len
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(samples_per_shape));
    for (name, chunks) in &data {
        let encoded: Vec<Vec<u8>> = chunks.iter().map(|s| encode(s).into_bytes()).collect();
        g.bench_with_input(BenchmarkId::from_parameter(name), &encoded, |b, encoded| {
            b.iter(|| {
                let mut acc = (0i64, 0u64);
                for bytes in encoded {
                    let Ok(mut it) = XorIterator::new(black_box(bytes)) else {
                        continue;
                    };
                    while let Some((t, v)) = it.next_sample() {
                        acc.0 = acc.0.wrapping_add(t);
                        acc.1 ^= v.to_bits();
                    }
                }
                acc
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
