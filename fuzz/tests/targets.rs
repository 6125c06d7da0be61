//! A short run of every fuzz target, so that `cargo test` covers them: a few thousand inputs
//! each (a few hundred for the storage targets, which copy a data directory per input). Longer
//! runs: `cargo run --release -p edgeprom-fuzz -- <target> --iterations 1000000` (fuzz/README.md).

use std::time::Duration;

use edgeprom_fuzz::{RunOptions, run, target};

fn short_run(name: &str, iterations: u64) {
    let t = target(name).expect("target exists");
    let report = run(
        t,
        &RunOptions {
            iterations,
            seed: 12,
            budget: Duration::from_secs(20),
            ..RunOptions::default()
        },
    )
    .expect("run");
    let shown: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}: {} on {:?}",
                f.kind,
                f.message,
                String::from_utf8_lossy(&f.input[..f.input.len().min(200)])
            )
        })
        .collect();
    assert!(shown.is_empty(), "{name}: {shown:#?}");
    assert_eq!(report.executed, iterations);
}

#[test]
fn exposition() {
    short_run("exposition", 3000);
}

#[test]
fn promql() {
    short_run("promql", 1000);
}

#[test]
fn config() {
    short_run("config", 2000);
}

#[test]
fn rules() {
    short_run("rules", 2000);
}

#[test]
fn template() {
    short_run("template", 3000);
}

#[test]
fn api_params() {
    short_run("api_params", 3000);
}

#[test]
fn remote_write() {
    short_run("remote_write", 3000);
}

#[test]
fn wal() {
    short_run("wal", 150);
}

#[test]
fn block() {
    short_run("block", 150);
}

/// The storage targets only mean something if an unmodified directory opens and reads back every
/// sample the seed directory holds (6 series × 301 samples).
#[test]
fn storage_seeds_open_and_read_everything() {
    let all = edgeprom_fuzz::targets::storage_seed_samples();
    assert!(!all.is_empty());
    assert!(all.iter().all(|(_, n)| *n == 6 * 301), "{all:#?}");
}
