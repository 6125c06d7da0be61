//! `edgeprom check config`: what `promtool check config` checks and prints, for the config part.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::{Config, file_sd};

/// The outcome of a successful check.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The checked file, as given.
    pub path: PathBuf,
    /// The rule files found (each explicit one exists).
    pub rule_files: Vec<PathBuf>,
    /// Non-fatal findings, such as file SD patterns that match no file yet.
    pub warnings: Vec<String>,
    /// The loaded configuration.
    pub config: Config,
}

/// Prints promtool's lines: `Checking FILE`, `  SUCCESS: N rule files found` (when there are
/// any), warnings, and ` SUCCESS: FILE is valid prometheus config file syntax`.
impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Checking {}", self.path.display())?;
        for w in &self.warnings {
            writeln!(f, "  WARNING: {w}")?;
        }
        if !self.rule_files.is_empty() {
            writeln!(f, "  SUCCESS: {} rule files found", self.rule_files.len())?;
        }
        writeln!(
            f,
            " SUCCESS: {} is valid prometheus config file syntax",
            self.path.display()
        )
    }
}

/// promtool's output for a failed check: `Checking FILE` then `  FAILED: ERROR`.
pub fn check_failure_text(path: &Path, err: &ConfigError) -> String {
    format!("Checking {}\n  FAILED: {err}\n", path.display())
}

/// Loads `path`, requires every explicit rule file to exist, and parses every file SD file
/// that exists now (missing ones are warnings, as in promtool).
pub fn check_config(path: &Path) -> Result<CheckReport, ConfigError> {
    let config = Config::load(path)?;
    let mut warnings = Vec::new();
    for sc in &config.scrape_configs {
        for fsd in &sc.file_sd_configs {
            for pattern in &fsd.files {
                let files = file_sd::glob_paths(pattern);
                if files.is_empty() {
                    warnings.push(format!(
                        "file {pattern:?} for file_sd in scrape job {:?} does not exist",
                        sc.job_name
                    ));
                }
                for file in files {
                    file_sd::read_target_file(&file)?;
                }
            }
        }
    }
    Ok(CheckReport {
        path: path.to_path_buf(),
        rule_files: config.rule_files.clone(),
        warnings,
        config,
    })
}
