//! Grafana dashboards to list and render: `*.json` files and Kubernetes ConfigMaps
//! (`*.yaml`/`*.yml`) whose `data` keys ending in `.json` hold dashboard JSON.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

/// The platform's dashboards, embedded by `build.rs` from `fixtures/dashboards/`.
const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/dashboards.rs"));

/// Where dashboards come from.
#[derive(Debug, Clone)]
pub enum Dashboards {
    /// The platform's dashboards shipped in the binary.
    Embedded,
    /// A directory, read again on every request so new files show up without a restart.
    Dir(PathBuf),
}

/// One dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// URL-safe and unique: the source with every run of other characters turned into `-`.
    pub id: String,
    /// The file below the directory, and for ConfigMaps the data key: `k8s/x.yaml[d.json]`.
    pub source: String,
    /// The dashboard, or why it could not be read.
    pub json: Result<Value, String>,
}

impl Dashboard {
    fn new(source: String, json: Result<Value, String>) -> Dashboard {
        Dashboard {
            id: slug(&source),
            source,
            json,
        }
    }

    /// What the list shows: id, source, title, tags and the panel count, or the error.
    pub fn summary(&self) -> Value {
        match &self.json {
            Ok(j) => {
                let mut panels = 0;
                count_panels(&j["panels"], &mut panels);
                json!({
                    "id": self.id,
                    "source": self.source,
                    "title": j["title"].as_str().unwrap_or(&self.source),
                    "tags": j["tags"],
                    "panels": panels,
                })
            }
            Err(e) => {
                json!({"id": self.id, "source": self.source, "title": self.source, "error": e})
            }
        }
    }
}

fn count_panels(list: &Value, n: &mut usize) {
    for p in list.as_array().into_iter().flatten() {
        if p["type"] != "row" {
            *n += 1;
        }
        count_panels(&p["panels"], n);
    }
}

/// `k8s/grafana-x.yaml[x.json]` → `k8s-grafana-x-x`: extensions dropped, other characters
/// folded into single dashes.
fn slug(source: &str) -> String {
    let mut s = source.to_string();
    for ext in [".json", ".yaml", ".yml"] {
        s = s.replace(ext, "");
    }
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

impl Dashboards {
    /// Every dashboard, sorted by source.
    pub fn load(&self) -> Arc<Vec<Dashboard>> {
        match self {
            Dashboards::Embedded => {
                static CACHE: OnceLock<Arc<Vec<Dashboard>>> = OnceLock::new();
                CACHE
                    .get_or_init(|| {
                        Arc::new(
                            EMBEDDED
                                .iter()
                                .flat_map(|(path, text)| parse(path, text))
                                .collect(),
                        )
                    })
                    .clone()
            }
            Dashboards::Dir(dir) => {
                let mut files = Vec::new();
                walk(dir, &mut files);
                files.sort();
                let mut out = Vec::new();
                for f in files {
                    let rel = f
                        .strip_prefix(dir)
                        .unwrap_or(&f)
                        .to_string_lossy()
                        .into_owned();
                    match std::fs::read_to_string(&f) {
                        Ok(text) => out.extend(parse(&rel, &text)),
                        Err(e) => out.push(Dashboard::new(rel, Err(e.to_string()))),
                    }
                }
                Arc::new(out)
            }
        }
    }
}

/// Dashboard files below `dir` (unreadable directories are logged and skipped).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "reading the dashboards directory");
            return;
        }
    };
    for p in entries.flatten().map(|e| e.path()) {
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            out.push(p);
        }
    }
}

/// The dashboards in one file: a JSON dashboard, or each dashboard of a ConfigMap. YAML that is
/// not a ConfigMap with dashboard JSON yields nothing.
fn parse(path: &str, text: &str) -> Vec<Dashboard> {
    if path.ends_with(".json") {
        let json = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        return vec![Dashboard::new(path.to_string(), json)];
    }
    let cm: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![Dashboard::new(path.to_string(), Err(e.to_string()))],
    };
    let Some(data) = cm["data"].as_object() else {
        return Vec::new();
    };
    data.iter()
        .filter(|(k, _)| k.ends_with(".json"))
        .filter_map(|(k, v)| {
            let text = v.as_str()?;
            let json = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
            Some(Dashboard::new(format!("{path}[{k}]"), json))
        })
        .collect()
}
