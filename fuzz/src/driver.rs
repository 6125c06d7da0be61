//! The driver: generates inputs with [`crate::mutate::Mutator`], runs each on a worker thread
//! under `catch_unwind` with a time budget, watches resident memory, and writes every input that
//! panicked, overran its budget or pushed memory past the limit to `artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mutate::Mutator;
use crate::targets::Target;

/// How to run a target.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Inputs to run.
    pub iterations: u64,
    /// Seed of the input generator; the same seed gives the same inputs.
    pub seed: u64,
    /// Longest one input may run before it is reported as a hang and the run stops.
    pub budget: Duration,
    /// Resident memory (KiB) above which the run reports the input and stops.
    pub max_rss_kib: u64,
    /// Where findings are written (`<dir>/<target>/`); `None` writes nothing.
    pub artifacts: Option<PathBuf>,
    /// Print a progress line every this many inputs (0: never).
    pub progress_every: u64,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            iterations: 10_000,
            seed: 1,
            budget: Duration::from_secs(10),
            max_rss_kib: 2 << 20,
            artifacts: None,
            progress_every: 0,
        }
    }
}

/// What went wrong with one input.
#[derive(Debug, Clone)]
pub struct Finding {
    /// `panic`, `hang` or `memory`.
    pub kind: &'static str,
    /// The panic message, or what was exceeded.
    pub message: String,
    /// The input.
    pub input: Vec<u8>,
    /// Where it was written, if it was.
    pub artifact: Option<PathBuf>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Inputs run to completion.
    pub executed: u64,
    /// Everything found (a hang or memory finding ends the run).
    pub findings: Vec<Finding>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Slowest single input.
    pub slowest: Duration,
    /// Highest resident memory seen, in KiB.
    pub max_rss_kib: u64,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The worker thread could not be started.
    #[error("starting the worker thread: {0}")]
    Thread(std::io::Error),
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The last panic message of the worker, captured by a panic hook instead of printed.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_quiet_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Only the fuzz workers' panics are findings; anything else reports as usual.
            let worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("fuzz-"));
            if !worker {
                default(info);
                return;
            }
            let msg = match (
                info.payload().downcast_ref::<&str>(),
                info.payload().downcast_ref::<String>(),
            ) {
                (Some(s), _) => (*s).to_string(),
                (_, Some(s)) => s.clone(),
                _ => "panic".to_string(),
            };
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{msg}{at}"));
        }));
    });
}

fn save(dir: &Option<PathBuf>, target: &str, kind: &str, input: &[u8]) -> Option<PathBuf> {
    let dir = dir.as_ref()?.join(target);
    std::fs::create_dir_all(&dir).ok()?;
    // FNV-1a: a stable name, so the same input found twice is one file.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{kind}-{h:016x}"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// The inputs kept in `fuzz/corpus/<target>/`: past findings, run first on every run so that a
/// fixed bug stays fixed.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

/// Runs `target` as `opts` say. Panics are caught per input; a hang or excess memory stops the
/// run, since the worker cannot be interrupted.
pub fn run(target: &'static Target, opts: &RunOptions) -> Result<RunReport, DriverError> {
    install_quiet_panic_hook();
    let mut seeds = (target.seeds)();
    seeds.extend(corpus(target.name));
    let mut mutator = Mutator::new(
        seeds.clone(),
        target.dictionary.to_vec(),
        target.max_len,
        opts.seed,
    );
    let (to_worker, inbox) = mpsc::channel::<Arc<Vec<u8>>>();
    let (to_driver, results) = mpsc::channel::<Result<(), String>>();
    let run_one = target.run;
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        // Deep inputs recurse in parsers; give the worker the server's query-thread stack.
        .stack_size(16 << 20)
        .spawn(move || {
            for input in inbox {
                let r = std::panic::catch_unwind(|| run_one(&input)).map_err(|_| {
                    LAST_PANIC
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                        .unwrap_or_else(|| "panic".into())
                });
                if to_driver.send(r).is_err() {
                    break;
                }
            }
        })
        .map_err(DriverError::Thread)?;

    let mut report = RunReport::default();
    let started = Instant::now();
    // The seeds themselves first, then mutations.
    let mut pending_seeds = seeds.into_iter();
    let in_flight = opts
        .artifacts
        .as_ref()
        .map(|d| d.join(target.name).join("in-flight"));
    for i in 0..opts.iterations {
        let input = Arc::new(pending_seeds.next().unwrap_or_else(|| mutator.next_input()));
        // A signal (SIGBUS from a memory map, an abort) would end the process without a report:
        // the input being run is on disk until it returns.
        if let Some(p) = &in_flight
            && target.max_len > (64 << 10)
        {
            if let Some(d) = p.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            let _ = std::fs::write(p, input.as_slice());
        }
        let t0 = Instant::now();
        if to_worker.send(input.clone()).is_err() {
            break;
        }
        match results.recv_timeout(opts.budget) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                let artifact = save(&opts.artifacts, target.name, "panic", &input);
                report.findings.push(Finding {
                    kind: "panic",
                    message,
                    input: input.to_vec(),
                    artifact,
                });
            }
            Err(_) => {
                let artifact = save(&opts.artifacts, target.name, "hang", &input);
                report.findings.push(Finding {
                    kind: "hang",
                    message: format!("input ran longer than {:?}", opts.budget),
                    input: input.to_vec(),
                    artifact,
                });
                break;
            }
        }
        report.slowest = report.slowest.max(t0.elapsed());
        report.executed += 1;
        if i % 256 == 0 {
            let rss = rss_kib();
            report.max_rss_kib = report.max_rss_kib.max(rss);
            if rss > opts.max_rss_kib {
                let artifact = save(&opts.artifacts, target.name, "memory", &input);
                report.findings.push(Finding {
                    kind: "memory",
                    message: format!("resident memory {rss} KiB over {}", opts.max_rss_kib),
                    input: input.to_vec(),
                    artifact,
                });
                break;
            }
        }
        if opts.progress_every > 0 && (i + 1) % opts.progress_every == 0 {
            eprintln!(
                "{}: {} inputs, {:.0}/s, {} findings, rss {} MiB",
                target.name,
                i + 1,
                (i + 1) as f64 / started.elapsed().as_secs_f64().max(1e-9),
                report.findings.len(),
                rss_kib() / 1024
            );
        }
    }
    if let Some(p) = &in_flight {
        let _ = std::fs::remove_file(p);
    }
    report.elapsed = started.elapsed();
    report.max_rss_kib = report.max_rss_kib.max(rss_kib());
    Ok(report)
}

/// Runs one saved input (an artifact) and returns the panic message, if it panics.
pub fn replay(target: &'static Target, path: &Path) -> std::io::Result<Option<String>> {
    install_quiet_panic_hook();
    let input = std::fs::read(path)?;
    let run_one = target.run;
    let r = std::thread::Builder::new()
        .name("fuzz-replay".into())
        .stack_size(16 << 20)
        .spawn(move || std::panic::catch_unwind(|| run_one(&input)))?
        .join()
        .unwrap_or(Err(Box::new("worker died")));
    Ok(r.err().map(|_| {
        LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "panic".into())
    }))
}
