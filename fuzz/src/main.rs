//! `cargo run --release -p edgeprom-fuzz -- <target> --iterations N [--seed S] [--budget-ms MS]`
//! runs one fuzz target; `--replay FILE` runs one saved input; `list` names the targets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use edgeprom_fuzz::{RunOptions, TARGETS, replay, run, target};

const USAGE: &str = "usage: edgeprom-fuzz <target|all|list> [--iterations N] [--seed S] [--budget-ms MS] [--max-rss-mib M] [--artifacts DIR] [--replay FILE]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if name == "list" {
        for t in TARGETS {
            println!("{:<14} {}", t.name, t.about);
        }
        return ExitCode::SUCCESS;
    }
    let mut opts = RunOptions {
        iterations: 100_000,
        progress_every: 100_000,
        artifacts: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts")),
        ..RunOptions::default()
    };
    let mut replay_file = None;
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let value = it.next();
        let parsed = value.and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), parsed) {
            ("--iterations", Some(n)) => opts.iterations = n,
            ("--seed", Some(n)) => opts.seed = n,
            ("--budget-ms", Some(n)) => opts.budget = Duration::from_millis(n),
            ("--max-rss-mib", Some(n)) => opts.max_rss_kib = n << 10,
            ("--progress", Some(n)) => opts.progress_every = n,
            ("--artifacts", _) if value.is_some() => opts.artifacts = value.map(PathBuf::from),
            ("--replay", _) if value.is_some() => replay_file = value.map(PathBuf::from),
            _ => {
                eprintln!("bad argument {flag} {}\n{USAGE}", value.map_or("", |v| v));
                return ExitCode::from(2);
            }
        }
    }
    let targets: Vec<_> = if name == "all" {
        TARGETS.iter().collect()
    } else {
        match target(name) {
            Some(t) => vec![t],
            None => {
                eprintln!("unknown target {name}; `edgeprom-fuzz list` names them");
                return ExitCode::from(2);
            }
        }
    };
    if let Some(file) = replay_file {
        for t in targets {
            match replay(t, &file) {
                Ok(None) => println!("{}: {} runs cleanly", t.name, file.display()),
                Ok(Some(msg)) => {
                    println!("{}: {} panics: {msg}", t.name, file.display());
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return ExitCode::from(2);
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    for t in targets {
        let report = match run(t, &opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: {e}", t.name);
                return ExitCode::from(2);
            }
        };
        println!(
            "{}: {} inputs in {:.1} s ({:.0}/s), slowest {:?}, max RSS {} MiB, {} findings",
            t.name,
            report.executed,
            report.elapsed.as_secs_f64(),
            report.executed as f64 / report.elapsed.as_secs_f64().max(1e-9),
            report.slowest,
            report.max_rss_kib / 1024,
            report.findings.len()
        );
        for f in &report.findings {
            failed = true;
            let msg: String = f.message.chars().take(300).collect();
            println!(
                "  {} {msg} ({})",
                f.kind,
                f.artifact
                    .as_ref()
                    .map_or("not saved".into(), |p| p.display().to_string())
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
