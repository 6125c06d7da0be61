//! The fixture subcommands: `demo`, `record`, `replay` and `import`, thin shells over
//! `edgeprom-fixtures`.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use edgeprom_fixtures::demo::DemoTargets;

use crate::cli::{Cli, DemoFlags, GenerateFlags, RecordFlags, ReplayFlags, ShiftMode};

/// Starts the demo targets, writes the `prometheus.yml` scraping them into the data directory and
/// runs the normal server with it, so reloads and every endpoint behave as in production.
pub fn demo(flags: DemoFlags) -> ExitCode {
    let targets = match DemoTargets::start(flags.workers, flags.seed) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("edgeprom demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&flags.storage_path) {
        eprintln!(
            "edgeprom demo: creating {}: {e}",
            flags.storage_path.display()
        );
        return ExitCode::FAILURE;
    }
    let config_file = flags.storage_path.join("prometheus.yml");
    if let Err(e) = std::fs::write(&config_file, targets.config_yaml()) {
        eprintln!("edgeprom demo: writing {}: {e}", config_file.display());
        return ExitCode::FAILURE;
    }
    let level = flags
        .log_level
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_else(|| "info".into());
    // Parsing a command line gives the server every default exactly as `edgeprom` alone would.
    let cli = match Cli::try_parse_from([
        "edgeprom".to_string(),
        format!("--config.file={}", config_file.display()),
        format!("--storage.tsdb.path={}", flags.storage_path.display()),
        format!("--web.listen-address={}", flags.listen_address),
        format!("--log.level={level}"),
    ]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgeprom demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shown = match flags.listen_address.rsplit_once(':') {
        Some(("0.0.0.0" | "" | "[::]", port)) => format!("localhost:{port}"),
        _ => flags.listen_address.clone(),
    };
    let jobs: std::collections::BTreeSet<&str> = targets.targets.iter().map(|t| t.job).collect();
    println!(
        "edgeprom demo: {} targets of {} jobs (Dynamo's six and the Kubernetes side) on loopback:",
        targets.targets.len(),
        jobs.len()
    );
    for t in &targets.targets {
        println!("  {:<26} {:<34} http://{}/metrics", t.job, t.name, t.addr);
    }
    println!("config: {}", config_file.display());
    println!("query:  http://{shown}/api/v1/query?query=up");
    println!("health: http://{shown}/metrics  (edgeprom_target_up per job)");
    crate::server::run(cli.server)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("edgeprom: starting the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn fail(cmd: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("edgeprom {cmd}: {e}");
    ExitCode::FAILURE
}

/// `edgeprom record`: scrapes the configuration's static targets for `--duration`.
pub fn record(flags: RecordFlags) -> ExitCode {
    let duration = match edgeprom_config::Duration::parse(&flags.duration) {
        Ok(d) => d.as_std(),
        Err(e) => return fail("record", format!("--duration: {e}")),
    };
    let config = match edgeprom_config::Config::load(&flags.config_file) {
        Ok(c) => c,
        Err(e) => return fail("record", e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match rt.block_on(edgeprom_fixtures::record::record(
        &config, duration, &flags.out,
    )) {
        Ok(stats) => {
            println!(
                "recorded {} scrapes ({} failed) into {} file(s) under {}",
                stats.scrapes,
                stats.failed,
                stats.files.len(),
                flags.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail("record", e),
    }
}

/// `edgeprom replay`: `--import` into storage, or `--serve` on loopback until interrupted.
pub fn replay(flags: ReplayFlags) -> ExitCode {
    use edgeprom_fixtures::replay::{ServeTargets, Shift, import_recordings};
    if flags.import {
        let storage = match edgeprom_storage::Storage::open(
            &flags.storage_path,
            edgeprom_storage::Options::default(),
        ) {
            Ok(s) => s,
            Err(e) => return fail("replay", e),
        };
        let shift = match flags.shift {
            ShiftMode::Original => Shift::Original,
            ShiftMode::Now => Shift::EndAt(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
            ),
        };
        let started = std::time::Instant::now();
        return match import_recordings(&flags.paths, &storage, shift) {
            Ok(s) => {
                println!(
                    "imported {} scrapes ({} failed), {} samples ({} rejected) into {} block(s) in {:.2?}",
                    s.scrapes,
                    s.failed_scrapes,
                    s.samples,
                    s.rejected,
                    s.blocks,
                    started.elapsed()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail("replay", e),
        };
    }
    let targets = match ServeTargets::bind(&flags.paths, flags.port) {
        Ok(t) => t,
        Err(e) => return fail("replay", e),
    };
    let yaml = targets.config_yaml(10);
    if let Some(path) = &flags.config_out
        && let Err(e) = std::fs::write(path, &yaml)
    {
        return fail("replay", format!("writing {}: {e}", path.display()));
    }
    for t in &targets.targets {
        let labels: Vec<String> = t.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        println!(
            "http://{}/metrics  {{{}}}  {} scrapes, looping",
            t.addr,
            labels.join(","),
            t.scrapes
        );
    }
    if flags.config_out.is_none() {
        print!("{yaml}");
    }
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    rt.block_on(async {
        tokio::select! {
            _ = targets.serve() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    });
    ExitCode::SUCCESS
}

/// `edgeprom generate`: recordings from the generator.
pub fn generate(flags: GenerateFlags) -> ExitCode {
    let config = edgeprom_fixtures::corpus::Config {
        workers: flags.workers,
        duration_s: flags.duration_s,
        seed: flags.seed,
        ..Default::default()
    };
    match edgeprom_fixtures::generate::write_recordings(config, &flags.out) {
        Ok((files, samples)) => {
            for f in &files {
                println!("{}", f.display());
            }
            println!("{samples} samples in {} file(s)", files.len());
            ExitCode::SUCCESS
        }
        Err(e) => fail("generate", e),
    }
}

/// `edgeprom import openmetrics`: prints samples, series, blocks and the rate.
pub fn import_openmetrics(
    file: &std::path::Path,
    data: &std::path::Path,
    progress: bool,
) -> ExitCode {
    let started = std::time::Instant::now();
    match edgeprom_fixtures::import::import_openmetrics(file, data, progress) {
        Ok(r) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "imported {} samples ({} rejected) of {} series from {} lines into {} block(s) in {:.2} s: {:.2} M samples/s",
                r.samples,
                r.rejected,
                r.series,
                r.lines,
                r.blocks.len(),
                secs,
                r.samples as f64 / secs.max(1e-9) / 1e6
            );
            for b in &r.blocks {
                println!("  {}", data.join(b).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail("import openmetrics", e),
    }
}
