//! The fixture subcommands: `demo`, `record`, `replay` and `import`, thin shells over
//! `edgeprom-fixtures`.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use edgeprom_fixtures::demo::DemoTargets;

use crate::cli::{Cli, DemoFlags};

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
    println!(
        "edgeprom demo: {} targets of 6 Dynamo jobs on loopback:",
        targets.targets.len()
    );
    for t in &targets.targets {
        println!("  {:<26} {:<34} http://{}/metrics", t.job, t.name, t.addr);
    }
    println!("config: {}", config_file.display());
    println!("query:  http://{shown}/api/v1/query?query=up");
    println!("health: http://{shown}/metrics  (edgeprom_target_up per job)");
    crate::server::run(cli.server)
}
