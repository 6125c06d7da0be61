//! File-based service discovery (`discovery/file`): JSON or YAML files holding target groups.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::TargetGroup;
use crate::duration::Duration;
use crate::error::{ConfigError, ErrorKind, Position};

/// The label file SD adds to every group: the file the group came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSdConfig {
    /// File patterns (`*` allowed in the last path element), relative ones already joined to the
    /// config file's directory.
    pub files: Vec<String>,
    /// How often to re-read the files besides watching them; 5m.
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> FileSdConfig {
        FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// Whether `name` is acceptable as a file SD pattern: Prometheus's
/// `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
pub(crate) fn valid_pattern(name: &str) -> bool {
    let ext_ok = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"]
        .iter()
        .any(|e| name.ends_with(e));
    ext_ok && valid_star_pattern(name)
}

/// `^[^*]*(\*[^/]*)?$`: at most one `*`, and nothing after it may be a directory separator.
pub(crate) fn valid_star_pattern(name: &str) -> bool {
    match name.find('*') {
        None => true,
        Some(i) => !name[i + 1..].contains(['*', '/']),
    }
}

/// Expands a config's patterns to the files that exist now, in order, without duplicates. Bad
/// patterns match nothing (Prometheus logs and skips them).
pub fn expand(cfg: &FileSdConfig) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in &cfg.files {
        for p in glob_paths(pattern) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Like Go's `filepath.Glob`: a pattern without metacharacters yields itself if it exists.
pub(crate) fn glob_paths(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?', '[']) {
        let p = PathBuf::from(pattern);
        return if p.exists() { vec![p] } else { Vec::new() };
    }
    match glob::glob(pattern) {
        Ok(paths) => {
            let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

/// Reads one target file: `.json` as JSON, `.yml`/`.yaml` as strict YAML, by extension
/// (case-insensitive). Each group gets source `PATH:INDEX` and the `__meta_filepath` label.
pub fn read_target_file(path: &Path) -> Result<Vec<TargetGroup>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, &e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let groups: Vec<Option<FileGroup>> = match ext.as_str() {
        "json" => serde_json::from_str(&text).map_err(|e| {
            let position = (e.line() > 0).then(|| Position {
                line: e.line() as u64,
                column: e.column() as u64,
            });
            ConfigError::new(
                path,
                position,
                "",
                ErrorKind::Syntax,
                strip_json_position(&e),
            )
        })?,
        "yml" | "yaml" => crate::error::parse_yaml(&text, path)?.unwrap_or_default(),
        other => {
            return Err(ConfigError::new(
                path,
                None,
                "",
                ErrorKind::Invalid,
                format!("unhandled file extension {:?}", format!(".{other}")),
            ));
        }
    };
    let file = path.to_string_lossy().into_owned();
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        let Some(g) = g else {
            return Err(ConfigError::new(
                path,
                None,
                format!("[{i}]"),
                ErrorKind::Invalid,
                "nil target group item found",
            ));
        };
        if let Some(bad) = g.labels.keys().find(|k| k.is_empty()) {
            return Err(ConfigError::new(
                path,
                None,
                format!("[{i}].labels"),
                ErrorKind::Invalid,
                format!("{bad:?} is not a valid label name"),
            ));
        }
        let mut labels = g.labels;
        labels.insert(FILEPATH_LABEL.to_string(), file.clone());
        out.push(TargetGroup {
            targets: g.targets,
            labels,
            source: format!("{file}:{i}"),
        });
    }
    Ok(out)
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_json_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
