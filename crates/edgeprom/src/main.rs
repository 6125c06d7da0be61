//! The `edgeprom` binary: the server (scrape → storage → HTTP), its `check` tools, and the
//! fixture commands (`demo`, `record`, `replay`, `import`).

mod cli;
mod fixtures_cmd;
mod log_writer;
mod server;
mod storage_metrics;
mod web_config;

use std::process::ExitCode;

use clap::Parser;

/// Every active series holds a small, growing chunk buffer that is freed when the chunk is full;
/// glibc's allocator keeps those freed buffers as fragmented RSS (0.71 MiB per 1,000 series at
/// 460k series after one chunk cut, against 0.55 with mimalloc: `bench/README.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::Check {
            what: cli::Check::Config { files },
        }) => check_config(&files),
        Some(cli::Command::Check {
            what: cli::Check::Rules { files },
        }) => check_rules(&files),
        Some(cli::Command::Demo(flags)) => fixtures_cmd::demo(flags),
        Some(cli::Command::Record(flags)) => fixtures_cmd::record(flags),
        Some(cli::Command::Replay(flags)) => fixtures_cmd::replay(flags),
        Some(cli::Command::Generate(flags)) => fixtures_cmd::generate(flags),
        Some(cli::Command::Import {
            what:
                cli::Import::Openmetrics {
                    file,
                    storage_path,
                    no_progress,
                },
        }) => fixtures_cmd::import_openmetrics(&file, &storage_path, !no_progress),
        None => server::run(cli.server),
    }
}

/// Prints what `promtool check config` prints; exit code 1 if any file fails.
fn check_config(files: &[std::path::PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        match edgeprom_config::check_config(file) {
            Ok(report) => {
                print!("{report}");
                println!();
                // As promtool does, the rule files a config names are checked with it.
                ok &= check_rules(&report.rule_files) == ExitCode::SUCCESS;
            }
            Err(e) => {
                println!("Checking {}", file.display());
                println!("  FAILED: {e}");
                println!();
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints what `promtool check rules` prints (`  SUCCESS: N rules found`, or `  FAILED:` and the
/// error as `FILE:LINE:COL: …`); exit code 1 if any file fails.
fn check_rules(files: &[std::path::PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        println!("Checking {}", file.display());
        match edgeprom_rules::check_rules_file(file) {
            Ok(n) => println!("  SUCCESS: {n} rules found"),
            Err(e) => {
                println!("  FAILED:");
                println!("{e}");
                ok = false;
            }
        }
        println!();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
