//! `rss-bench`: appends `--scrapes` scrapes of `--series` active, Dynamo-shaped series, prints the
//! process's resident memory per 1,000 active series, then reopens the storage and prints the
//! time from `Storage::open` to the first successful select (restart-to-ready).
//!
//! The series are the corpus generator's (`dynamo-corpus`) for as many workers as it takes,
//! cut at `--series`. One commit per target per scrape, refs reused as the scrape cache does.
//! Run time grows with `--series × --scrapes`; the defaults (460,000 × 20) take about a minute
//! on two cores.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use edgeprom_bench::active::{STEP_MS, T0_MS, append_scrape, dynamo_series};
use edgeprom_bench::sys::{memory, mib};
use edgeprom_model::SeriesRef;
use edgeprom_storage::index::{MatchType, Matcher};
use edgeprom_storage::{Options, Storage};

/// Measure RSS per active series and restart-to-ready time.
#[derive(Debug, Parser)]
#[command(name = "rss-bench")]
struct Args {
    /// Active series to append.
    #[arg(long, default_value_t = 460_000)]
    series: usize,
    /// Scrapes of every series (15 s apart). Above 120 full chunks start going to disk.
    #[arg(long, default_value_t = 20)]
    scrapes: usize,
    /// Call `Storage::maintain` (WAL checkpoint) after the appends, as a running edgeprom would
    /// periodically, so the reopen replays only what the head-chunk files do not hold.
    #[arg(long)]
    maintain: bool,
    /// Data directory (should be new or empty).
    #[arg(long = "storage.tsdb.path")]
    path: PathBuf,
}

fn run(args: &Args) -> Result<(), String> {
    let mem0 = memory();
    let (_corpus, _body, series) = dynamo_series(args.series)?;
    let names: Vec<String> = series
        .iter()
        .map(|(_, l)| l.metric_name().to_string())
        .collect();
    let mem_labels = memory();
    println!("series {}", series.len());
    println!("scrapes {}", args.scrapes);
    println!("rss_baseline_mib {}", mib(mem0.rss_kib * 1024));
    // The bench's own share: the generator, the series text and a `Labels` per series (what a
    // scrape cache holds). The engine's share is what the process grows by after this.
    println!("rss_bench_fixture_mib {}", mib(mem_labels.rss_kib * 1024));

    let storage = Storage::open(&args.path, Options::default()).map_err(|e| e.to_string())?;
    let mut refs: Vec<Option<SeriesRef>> = vec![None; series.len()];
    let start = Instant::now();
    let mut first_scrape = 0.0;
    for k in 0..args.scrapes {
        append_scrape(&storage, &series, &names, &mut refs, k)?;
        if k == 0 {
            first_scrape = start.elapsed().as_secs_f64();
        }
    }
    let append_secs = start.elapsed().as_secs_f64();
    let mem = memory();
    let samples = (series.len() * args.scrapes) as f64;
    let per_k = |kib: u64| kib as f64 / 1024.0 / (series.len() as f64 / 1000.0);
    let engine_kib = mem.rss_kib.saturating_sub(mem_labels.rss_kib);
    println!("first_scrape_seconds {first_scrape:.2}");
    println!("append_seconds {append_secs:.2}");
    println!("samples_per_second {:.0}", samples / append_secs.max(1e-9));
    println!("vm_rss_mib {}", mib(mem.rss_kib * 1024));
    println!("vm_hwm_mib {}", mib(mem.hwm_kib * 1024));
    println!("rss_mib_per_1000_series_total {:.3}", per_k(mem.rss_kib));
    println!("rss_mib_per_1000_series_engine {:.3}", per_k(engine_kib));

    if args.maintain {
        let start = Instant::now();
        let now = T0_MS + args.scrapes as i64 * STEP_MS;
        storage.maintain(now).map_err(|e| e.to_string())?;
        println!("maintain_seconds {:.3}", start.elapsed().as_secs_f64());
    }
    storage.sync().map_err(|e| e.to_string())?;
    drop(storage);
    let mem_dropped = memory();
    println!("rss_after_drop_mib {}", mib(mem_dropped.rss_kib * 1024));

    let probe = [Matcher::new(MatchType::Equal, "__name__", "up").map_err(|e| e.to_string())?];
    let start = Instant::now();
    let storage = Storage::open(&args.path, Options::default()).map_err(|e| e.to_string())?;
    let opened = start.elapsed().as_secs_f64();
    let found = storage.select(&probe, i64::MIN, i64::MAX);
    let n: usize = found.iter().map(|s| s.samples().count()).sum();
    let ready = start.elapsed().as_secs_f64();
    if n == 0 {
        return Err("no `up` samples after reopen".into());
    }
    let mem_reopened = memory();
    println!("reopen_open_seconds {opened:.3}");
    println!("restart_to_ready_seconds {ready:.3}");
    println!("reopen_series {}", storage.num_series());
    println!(
        "reopen_samples_replayed {}",
        storage.open_report().samples_replayed
    );
    println!("rss_after_reopen_mib {}", mib(mem_reopened.rss_kib * 1024));
    Ok(())
}

/// The same allocator as the `edgeprom` binary, so the RSS measured is the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rss-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
