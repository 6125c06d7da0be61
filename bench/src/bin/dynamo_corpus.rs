//! `dynamo-corpus`: writes a deterministic, Dynamo-shaped OpenMetrics corpus (see
//! `edgeprom_bench::corpus`) that `promtool tsdb create-blocks-from openmetrics`, edgeprom's
//! `load-storage` and (with timestamps turned into milliseconds, see `compare-size.sh`)
//! VictoriaMetrics' `/api/v1/import/prometheus` all read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use edgeprom_bench::corpus::{Config, Corpus, DEFAULT_START_S, DEFAULT_WORKERS};

/// Generate a Dynamo-shaped OpenMetrics corpus.
#[derive(Debug, Parser)]
#[command(name = "dynamo-corpus")]
struct Args {
    /// Number of Dynamo backend workers (one GPU each); the default gives ≈ 31 M samples/hour.
    #[arg(long, default_value_t = DEFAULT_WORKERS)]
    targets: usize,
    /// Length of the corpus: `1h`, `30m`, `90s` or plain seconds.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    duration: i64,
    /// Output file; omit with `--stats`.
    #[arg(long, required_unless_present = "stats")]
    out: Option<PathBuf>,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First timestamp, Unix seconds (default 2026-01-01T00:00:00Z, on a 2 h block boundary).
    #[arg(long, default_value_t = DEFAULT_START_S)]
    start: i64,
    /// Print series and samples per job and exit without writing.
    #[arg(long)]
    stats: bool,
}

fn parse_duration(s: &str) -> Result<i64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 's')) => (&s[..i], 1),
        _ => (s, 1),
    };
    let n: i64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    if n <= 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(n * mult)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = Config {
        workers: args.targets,
        duration_s: args.duration,
        seed: args.seed,
        start_s: args.start,
    };
    let mut corpus = Corpus::new(config);
    let stats = corpus.stats();
    eprintln!("| job | interval | targets | series | samples |");
    eprintln!("|---|---|---|---|---|");
    for (job, interval, targets, series, samples) in &stats.jobs {
        eprintln!("| {job} | {interval}s | {targets} | {series} | {samples} |");
    }
    eprintln!(
        "| total | | {} | {} | {} |",
        corpus.targets().len(),
        stats.series,
        stats.samples
    );
    let Some(out) = args.out.filter(|_| !args.stats) else {
        return ExitCode::SUCCESS;
    };
    let file = match std::fs::File::create(&out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("dynamo-corpus: {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    };
    let mut w = std::io::BufWriter::with_capacity(4 << 20, file);
    let written = match corpus.write(&mut w).and_then(|n| w.flush().map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("dynamo-corpus: writing {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!("wrote {written} samples to {}", out.display());
    ExitCode::SUCCESS
}
