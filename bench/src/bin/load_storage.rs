//! `load-storage`: appends an OpenMetrics corpus into edgeprom's storage as the scraper would
//! (one commit per target scrape, refs reused) and prints ingest rate and bytes per sample.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use edgeprom_bench::load::{load, settle_and_measure};
use edgeprom_bench::sys::{memory, mib};
use edgeprom_storage::{Options, Storage};

/// Load a corpus into edgeprom storage and report its size.
#[derive(Debug, Parser)]
#[command(name = "load-storage")]
struct Args {
    /// The corpus (OpenMetrics with timestamps, as `dynamo-corpus` writes).
    #[arg(long)]
    corpus: PathBuf,
    /// Data directory; should be new or empty so the size is this corpus's alone.
    #[arg(long = "storage.tsdb.path")]
    path: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let file = match std::fs::File::open(&args.corpus) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("load-storage: {}: {e}", args.corpus.display());
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: the corpus is a file this run only reads; nothing truncates it meanwhile.
    let body = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => m,
        Err(e) => {
            eprintln!("load-storage: mapping {}: {e}", args.corpus.display());
            return ExitCode::FAILURE;
        }
    };
    let storage = match Storage::open(&args.path, Options::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load-storage: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match load(&storage, &body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load-storage: {e}");
            return ExitCode::FAILURE;
        }
    };
    let size = match settle_and_measure(&storage) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load-storage: measuring {}: {e}", args.path.display());
            return ExitCode::FAILURE;
        }
    };
    let secs = report.elapsed.as_secs_f64();
    let per = |b: u64| b as f64 / report.samples.max(1) as f64;
    let mem = memory();
    println!("samples_appended {}", report.samples);
    println!("samples_rejected {}", report.rejected);
    println!("series {}", report.series);
    println!("commits {}", report.commits);
    println!("elapsed_seconds {secs:.2}");
    println!(
        "samples_per_second {:.0}",
        report.samples as f64 / secs.max(1e-9)
    );
    println!("dir_bytes {}", size.total.allocated);
    println!("dir_apparent_bytes {}", size.total.apparent);
    let block_bytes: u64 = size.blocks.iter().map(|(_, b)| b).sum();
    println!("blocks {}", size.blocks.len());
    println!("block_bytes {block_bytes}");
    println!("block_bytes_per_sample {:.3}", per(block_bytes));
    println!("wal_bytes {}", size.wal.allocated);
    println!("chunks_head_bytes {}", size.chunks_head.allocated);
    println!("bytes_per_sample {:.3}", per(size.total.allocated));
    println!("wal_bytes_per_sample {:.3}", per(size.wal.allocated));
    println!(
        "chunks_head_bytes_per_sample {:.3}",
        per(size.chunks_head.allocated)
    );
    println!("vm_rss_mib {}", mib(mem.rss_kib * 1024));
    println!("vm_hwm_mib {}", mib(mem.hwm_kib * 1024));
    ExitCode::SUCCESS
}
