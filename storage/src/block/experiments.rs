//! Size measurements of the encodings tried for blocks, on the Dynamo-shaped corpus. Run with
//! `cargo test -p edgeprom-storage --release block::experiments -- --ignored --nocapture`.

use super::codec::{self, ValueMode};
use super::corpus;
use super::{Block, WriteOptions, write_block_with};

fn corpus() -> Vec<corpus::Series> {
    corpus::dynamo_hour(7, 21)
}

fn write(data: &[corpus::Series], opts: WriteOptions) -> (u64, u64, u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write_block_with(
        dir.path(),
        data.iter().map(|(l, _, s)| Ok((l.clone(), s.clone()))),
        corpus::START_MS,
        corpus::START_MS + corpus::HOUR_MS,
        1,
        Vec::new(),
        opts,
    )
    .expect("write");
    let b = Block::open(&dir.path().join(&meta.id)).expect("open");
    let size = |f: &str| std::fs::metadata(b.dir().join(f)).map(|m| m.len()).unwrap_or(0);
    (
        meta.num_samples,
        size(super::INDEX_FILE),
        size(super::SAMPLES_FILE),
        size(super::META_FILE),
    )
}

/// Per-series pco: timestamps as i64, values as decimal mantissas when the codec finds them,
/// raw f64 otherwise (the best pco can do with the same transform).
fn pco_bytes(data: &[corpus::Series]) -> u64 {
    let cfg = pco::ChunkConfig::default();
    let mut total = 0u64;
    for (_, _, s) in data {
        let ts: Vec<i64> = s.iter().map(|x| x.0).collect();
        let vs: Vec<f64> = s.iter().map(|x| x.1).collect();
        total += pco::standalone::simple_compress(&ts, &cfg).map(|b| b.len()).unwrap_or(0) as u64;
        // Decimal mantissas in the same transform as ours, recovered from our own stream.
        let mut enc = Vec::new();
        codec::encode_values(&vs, ValueMode::Auto, &mut enc);
        let vbytes = if enc.first() == Some(&codec::KIND_XOR) {
            pco::standalone::simple_compress(&vs, &cfg).map(|b| b.len()).unwrap_or(0)
        } else {
            let ms: Vec<i64> = vs.iter().map(|v| (v * 1e15).round() as i64).collect();
            let scale_probe: Vec<i64> = vs.iter().map(|v| (v * 10.0).round() as i64).collect();
            let ints: Vec<i64> = vs.iter().map(|v| *v as i64).collect();
            let best = [ints, scale_probe, ms]
                .iter()
                .map(|m| pco::standalone::simple_compress(m, &cfg).map(|b| b.len()).unwrap_or(usize::MAX))
                .min()
                .unwrap_or(0);
            best
        };
        total += vbytes as u64;
    }
    total
}

#[test]
#[ignore = "measurement; prints a table"]
fn encodings() {
    let data = corpus();
    let samples: u64 = data.iter().map(|s| s.2.len() as u64).sum();
    eprintln!("corpus: {} series, {samples} samples", data.len());
    let variants: Vec<(&str, WriteOptions)> = vec![
        ("xor-planes + zstd19, 64 KiB groups", WriteOptions { values: ValueMode::XorOnly, ..WriteOptions::default() }),
        ("decimal + zstd3, per series", WriteOptions { group_raw_bytes: 0, zstd_level: 3, ..WriteOptions::default() }),
        ("decimal + zstd19, per series", WriteOptions { group_raw_bytes: 0, zstd_level: 19, ..WriteOptions::default() }),
        ("decimal + zstd3, 16 KiB groups", WriteOptions { group_raw_bytes: 16 << 10, zstd_level: 3, ..WriteOptions::default() }),
        ("decimal + zstd3, 64 KiB groups", WriteOptions { group_raw_bytes: 64 << 10, zstd_level: 3, ..WriteOptions::default() }),
        ("decimal + zstd9, 64 KiB groups", WriteOptions { group_raw_bytes: 64 << 10, zstd_level: 9, ..WriteOptions::default() }),
        ("decimal + zstd19, 16 KiB groups", WriteOptions { group_raw_bytes: 16 << 10, zstd_level: 19, ..WriteOptions::default() }),
        ("decimal + zstd19, 64 KiB groups", WriteOptions { group_raw_bytes: 64 << 10, zstd_level: 19, ..WriteOptions::default() }),
        ("decimal + zstd19, 256 KiB groups", WriteOptions { group_raw_bytes: 256 << 10, zstd_level: 19, ..WriteOptions::default() }),
    ];
    eprintln!("| encoding | B/sample incl. index | index B | samples B | write s |");
    let mut index_bytes = 0;
    for (name, opts) in variants {
        let t = std::time::Instant::now();
        let (n, idx, smp, meta) = write(&data, opts);
        index_bytes = idx;
        eprintln!(
            "| {name} | {:.3} | {idx} | {smp} | {:.2} |",
            (idx + smp + meta) as f64 / n as f64,
            t.elapsed().as_secs_f64()
        );
    }
    let t = std::time::Instant::now();
    let p = pco_bytes(&data);
    eprintln!(
        "| pco per series (+ same index) | {:.3} | {index_bytes} | {p} | {:.2} |",
        (p + index_bytes) as f64 / samples as f64,
        t.elapsed().as_secs_f64()
    );
    // Per kind, with the production options.
    let mut kinds: Vec<&str> = data.iter().map(|s| s.1).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for k in kinds {
        let part: Vec<corpus::Series> = data.iter().filter(|s| s.1 == k).cloned().collect();
        let (n, _, smp, _) = write(&part, WriteOptions::default());
        eprintln!("kind {k}: {} series, samples file {:.3} B/sample", part.len(), smp as f64 / n as f64);
    }
}
