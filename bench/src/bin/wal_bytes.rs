//! `wal-bytes`: where the bytes of a young data directory go. Appends `--scrapes` scrapes of
//! `--series` active, Dynamo-shaped series through `Storage` (one commit per target, refs reused,
//! as the scraper appends), then reports bytes per sample of the WAL segments, the WAL checkpoint,
//! the head-chunk files and everything else in the directory.
//!
//! Both the apparent length and the allocated bytes (`st_blocks × 512`) are printed: head-chunk
//! files are preallocated sparse files, so only the allocated figure is what the disk pays.
//! The directory is removed at the end unless `--keep` is given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use edgeprom_bench::active::{STEP_MS, T0_MS, append_scrape, dynamo_series};
use edgeprom_model::SeriesRef;
use edgeprom_storage::{Options, Storage};

/// Measure bytes per sample of each part of the data directory before the first block.
#[derive(Debug, Parser)]
#[command(name = "wal-bytes")]
struct Args {
    /// Active series to append.
    #[arg(long, default_value_t = 50_000)]
    series: usize,
    /// Scrapes of every series (15 s apart).
    #[arg(long, default_value_t = 30)]
    scrapes: usize,
    /// Call `Storage::maintain` (WAL checkpoint) after the appends before measuring.
    #[arg(long)]
    maintain: bool,
    /// Keep the data directory instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Data directory (must not exist yet: it is deleted afterwards).
    #[arg(long = "storage.tsdb.path")]
    path: PathBuf,
}

/// Apparent and allocated bytes of one part of the directory.
#[derive(Debug, Default, Clone, Copy)]
struct Part {
    files: u64,
    len: u64,
    allocated: u64,
}

fn walk(dir: &Path, f: &mut impl FnMut(&Path, &std::fs::Metadata)) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let md = e.metadata()?;
        if md.is_dir() {
            walk(&e.path(), f)?;
        } else {
            f(&e.path(), &md);
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (_corpus, _body, series) = dynamo_series(args.series)?;
    let names: Vec<String> = series
        .iter()
        .map(|(_, l)| l.metric_name().to_string())
        .collect();
    let storage = Storage::open(&args.path, Options::default()).map_err(|e| e.to_string())?;
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let start = Instant::now();
    for k in 0..args.scrapes {
        append_scrape(&storage, &series, &names, &mut refs, k)?;
    }
    let append_secs = start.elapsed().as_secs_f64();
    if args.maintain {
        let now = T0_MS + args.scrapes as i64 * STEP_MS;
        storage.maintain(now).map_err(|e| e.to_string())?;
    }
    storage.sync().map_err(|e| e.to_string())?;

    // Measured while the storage is open: that is the state a running server's disk is in.
    let (mut segments, mut checkpoint, mut chunks, mut other) = Default::default();
    let wal = args.path.join("wal");
    let chunks_dir = args.path.join("chunks_head");
    walk(&args.path, &mut |p, md| {
        let part: &mut Part = if p.starts_with(&chunks_dir) {
            &mut chunks
        } else if p.starts_with(&wal) {
            let in_checkpoint = p
                .strip_prefix(&wal)
                .ok()
                .and_then(|r| r.components().next())
                .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with("checkpoint."));
            if in_checkpoint {
                &mut checkpoint
            } else {
                &mut segments
            }
        } else {
            &mut other
        };
        part.files += 1;
        part.len += md.len();
        part.allocated += md.blocks() * 512;
    })
    .map_err(|e| e.to_string())?;
    drop(storage);

    let samples = (series.len() * args.scrapes) as f64;
    println!("series {}", series.len());
    println!("scrapes {}", args.scrapes);
    println!("samples {samples}");
    println!("append_seconds {append_secs:.2}");
    let mut total = Part::default();
    for (name, p) in [
        ("wal_segments", segments),
        ("wal_checkpoint", checkpoint),
        ("head_chunks", chunks),
        ("other", other),
    ] {
        total.files += p.files;
        total.len += p.len;
        total.allocated += p.allocated;
        println!(
            "{name}: files {} len {} B ({:.3} B/sample) allocated {} B ({:.3} B/sample)",
            p.files,
            p.len,
            p.len as f64 / samples,
            p.allocated,
            p.allocated as f64 / samples
        );
    }
    println!(
        "total: files {} len {} B ({:.3} B/sample) allocated {} B ({:.3} B/sample)",
        total.files,
        total.len,
        total.len as f64 / samples,
        total.allocated,
        total.allocated as f64 / samples
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.path.exists() {
        // Never delete a directory this run did not create.
        eprintln!(
            "wal-bytes: {} exists; give a new directory",
            args.path.display()
        );
        return ExitCode::FAILURE;
    }
    let res = run(&args);
    if !args.keep
        && let Err(e) = std::fs::remove_dir_all(&args.path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("wal-bytes: removing {}: {e}", args.path.display());
    }
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wal-bytes: {e}");
            ExitCode::FAILURE
        }
    }
}
