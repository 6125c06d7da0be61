//! Size measurements of the encodings tried for blocks, on the Dynamo-shaped corpus. Run with
//! `cargo test -p edgeprom-storage --release --lib block::experiments -- --ignored --nocapture`.
//!
//! The zstd alternatives are sized in memory from the same per-series streams the first version of
//! the format wrote (varint delta-of-delta timestamps, decimal mantissas as delta/dod varints or
//! byte-transposed XOR floats, columns gathered per group of consecutive series); the index is the
//! stored format's, less its ~2 bytes per series of second stream reference.

use super::codec::{self, GroupBuilder, ValueMode};
use super::corpus;
use super::{Block, write_block};

fn zstd_size(data: &[corpus::Series], group_raw: usize, level: i32, mode: ValueMode) -> u64 {
    let mut g = GroupBuilder::default();
    let mut total = 0u64;
    let mut flush = |g: &mut GroupBuilder| {
        if g.len() > 0 {
            let raw = g.finish();
            total += zstd::bulk::compress(&raw, level)
                .map(|c| c.len())
                .unwrap_or(0) as u64
                + 16;
        }
    };
    for (_, _, s) in data {
        g.push(s, mode);
        if g.raw_size() >= group_raw {
            flush(&mut g);
        }
    }
    flush(&mut g);
    total
}

fn write(data: &[corpus::Series]) -> (u64, u64, u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = write_block(
        dir.path(),
        data.iter().map(|(l, _, s)| (l.clone(), s.clone())),
        corpus::START_MS,
        corpus::START_MS + corpus::HOUR_MS,
        1,
        Vec::new(),
    )
    .expect("write");
    let b = Block::open(&dir.path().join(&meta.id)).expect("open");
    let size = |f: &str| std::fs::metadata(b.dir().join(f)).map_or(0, |m| m.len());
    (
        meta.num_samples,
        size(super::INDEX_FILE),
        size(super::SAMPLES_FILE),
        size(super::META_FILE),
    )
}

#[test]
#[ignore = "measurement; prints a table"]
fn encodings() {
    let data = corpus::dynamo_hour(7, 21);
    let samples: u64 = data.iter().map(|s| s.2.len() as u64).sum();
    eprintln!("corpus: {} series, {samples} samples", data.len());
    let t = std::time::Instant::now();
    let (n, idx, smp, meta) = write(&data);
    let pco_secs = t.elapsed().as_secs_f64();
    let index = idx - 2 * data.len() as u64;
    eprintln!("| encoding | B/sample incl. index | samples bytes | encode s |");
    let variants: &[(&str, usize, i32, ValueMode)] = &[
        (
            "dod varints + XOR planes, zstd 19, 64 KiB groups",
            64 << 10,
            19,
            ValueMode::XorOnly,
        ),
        (
            "dod + decimal varints, zstd 3, per series",
            0,
            3,
            ValueMode::Auto,
        ),
        (
            "dod + decimal varints, zstd 19, per series",
            0,
            19,
            ValueMode::Auto,
        ),
        (
            "dod + decimal varints, zstd 3, 64 KiB groups",
            64 << 10,
            3,
            ValueMode::Auto,
        ),
        (
            "dod + decimal varints, zstd 19, 16 KiB groups",
            16 << 10,
            19,
            ValueMode::Auto,
        ),
        (
            "dod + decimal varints, zstd 19, 64 KiB groups",
            64 << 10,
            19,
            ValueMode::Auto,
        ),
        (
            "dod + decimal varints, zstd 19, 256 KiB groups",
            256 << 10,
            19,
            ValueMode::Auto,
        ),
    ];
    for &(name, group, level, mode) in variants {
        let t = std::time::Instant::now();
        let z = zstd_size(&data, group, level, mode);
        eprintln!(
            "| {name} | {:.3} | {z} | {:.2} |",
            (z + index + meta) as f64 / n as f64,
            t.elapsed().as_secs_f64()
        );
    }
    // pco with every series' timestamps stored, to show what sharing them buys.
    let t = std::time::Instant::now();
    let mut unshared = 0u64;
    for (_, _, s) in &data {
        let ts: Vec<i64> = s.iter().map(|x| x.0).collect();
        let vs: Vec<f64> = s.iter().map(|x| x.1).collect();
        unshared += codec::encode_timestamps_pco(&ts).map_or(0, |b| b.len()) as u64;
        unshared += codec::encode_values_pco(&vs).map_or(0, |b| b.len()) as u64;
    }
    eprintln!(
        "| pco per series, own timestamps | {:.3} | {unshared} | {:.2} |",
        (unshared + index + meta) as f64 / n as f64,
        t.elapsed().as_secs_f64()
    );
    eprintln!(
        "| pco per series, shared timestamps (stored format) | {:.3} | {smp} | {pco_secs:.2} (whole write) |",
        (idx + smp + meta) as f64 / n as f64
    );
    eprintln!("stored: index {idx} B, samples {smp} B, meta {meta} B");
    let mut kinds: Vec<&str> = data.iter().map(|s| s.1).collect();
    kinds.sort_unstable();
    kinds.dedup();
    eprintln!("| kind | series | pco samples B/sample | zstd19 64 KiB B/sample |");
    for k in kinds {
        let part: Vec<corpus::Series> = data.iter().filter(|s| s.1 == k).cloned().collect();
        let (n, _, smp, _) = write(&part);
        let z = zstd_size(&part, 64 << 10, 19, ValueMode::Auto);
        eprintln!(
            "| {k} | {} | {:.3} | {:.3} |",
            part.len(),
            smp as f64 / n as f64,
            z as f64 / n as f64
        );
    }
}
