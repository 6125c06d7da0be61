//! Encode and decode throughput of one default-sized batch (2000 samples: 500 series × 4 samples,
//! 8 labels each), reported as samples/s. `encode` reuses one `Encoder` as a sender shard does and
//! includes snappy compression; `decode` is the receiver's path (decompression, protobuf, label
//! sets).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgeprom_model::{Labels, Sample};
use edgeprom_remote::{BatchSeries, Encoder, RemoteWriteMessage, WriteBatch, decode};

fn batch() -> WriteBatch {
    let series = (0..500)
        .map(|i| BatchSeries {
            labels: Labels::from_pairs([
                ("__name__", format!("dynamo_component_requests_{}", i % 20)),
                ("instance", format!("10.0.0.{}:9100", i % 7)),
                ("job", "dynamo-backend".to_string()),
                ("pod", format!("worker-{i}")),
                ("namespace", "dynamo".to_string()),
                ("model", "llama-3-70b".to_string()),
                ("site", "edge-1".to_string()),
                ("zone", "z1".to_string()),
            ]),
            samples: (0..4)
                .map(|k| Sample {
                    t: 1_700_000_000_000 + k * 15_000,
                    v: (i * 4 + k) as f64 * 1.25,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    WriteBatch {
        series,
        metadata: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let b = batch();
    let mut g = c.benchmark_group("remote_write");
    g.throughput(Throughput::Elements(b.sample_count() as u64));
    for (name, m) in [
        ("v1", RemoteWriteMessage::V1),
        ("v2", RemoteWriteMessage::V2),
    ] {
        let mut enc = Encoder::new();
        g.bench_function(format!("encode_{name}"), |bench| {
            bench.iter(|| black_box(enc.encode(&b, m).expect("encode").len()))
        });
        let body = Encoder::new().encode(&b, m).expect("encode").to_vec();
        println!(
            "{name}: {} bytes for {} samples",
            body.len(),
            b.sample_count()
        );
        g.bench_function(format!("decode_{name}"), |bench| {
            bench.iter(|| {
                black_box(
                    decode(&body, m, 64 << 20)
                        .expect("decode")
                        .batch
                        .series
                        .len(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
