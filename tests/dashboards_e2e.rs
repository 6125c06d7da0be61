//! Every Prometheus panel target of the shared Dynamo dashboards (`fixtures/dashboards`: plain
//! JSON and Kubernetes ConfigMaps embedding JSON), played against the real binary the way
//! Grafana's Prometheus datasource plays them: template variables resolved through
//! `/api/v1/label/<name>/values` with `match[]` (or `query_result`, custom, constant and interval
//! variables), Grafana's built-in `$__interval`, `$__rate_interval`, `$__range`… substituted,
//! multi-value variables both as their "All" value and as a `(a|b)` selection, start and end
//! floored to the step, and the query POSTed form-encoded to `/api/v1/query_range` (or
//! `/api/v1/query` for instant targets).
//!
//! The data: `edgeprom generate` writes 15 minutes of the generator's jobs, `edgeprom replay
//! --import --shift now` stores them ending now, and the binary serves that directory. Every query
//! must answer `success`, and at least 95 % of the targets must return data; the test prints the
//! ones that do not, with the reason.
//!
//! `EDGEPROM_DASHBOARDS_URL=http://127.0.0.1:9090` points the test at a running instance instead
//! (e.g. `edgeprom demo` after a couple of minutes); `EDGEPROM_DASHBOARDS_DIR` at other
//! dashboards. Network goes to 127.0.0.1 only (or the given URL) and every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Edgeprom, run, start, temp_dir};
use serde_json::Value;

/// The provisioned datasource sets no `timeInterval`, so Grafana assumes a 15 s scrape interval:
/// the floor of `$__interval` and the base of `$__rate_interval`.
const SCRAPE_INTERVAL_MS: i64 = 15_000;

/// Grafana never asks for more points than this per series ("safe resolution").
const SAFE_RESOLUTION: i64 = 11_000;

/// Minutes of generated data.
const DATA_MINUTES: i64 = 15;

/// Share of targets that must return data.
const MIN_COVERAGE: f64 = 0.95;

/// One dashboard as Grafana loads it.
struct Dashboard {
    /// File (and ConfigMap key) it came from.
    source: String,
    json: Value,
}

/// A template variable and what it resolved to.
#[derive(Debug, Clone)]
struct Variable {
    name: String,
    kind: String,
    multi: bool,
    include_all: bool,
    all_value: Option<String>,
    /// The options, in the order the datasource returned them.
    options: Vec<String>,
    /// The current selection after Grafana's validation (first option when the saved one is
    /// gone).
    current: Vec<String>,
}

/// How a target's variables are set for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    /// "All" for include-all variables, the current value elsewhere.
    All,
    /// The first two options of every multi-value variable.
    Multi,
}

/// Why a target was not sent.
enum Skip {
    /// Another datasource type (Loki, Tempo): not this server's business.
    NotPrometheus(String),
    /// An empty query editor; Grafana sends nothing for it.
    NoExpression,
    /// Hidden targets are not queried.
    Hidden,
}

impl Skip {
    fn describe(&self) -> String {
        match self {
            Skip::NotPrometheus(kind) => format!("{kind} datasource"),
            Skip::NoExpression => "no expression".into(),
            Skip::Hidden => "hidden".into(),
        }
    }
}

/// One panel target to send.
struct PanelTarget {
    dashboard: usize,
    panel: String,
    expr: String,
    instant: bool,
    range: bool,
    /// The target's or panel's min interval (`interval`), if any.
    min_interval: Option<String>,
    max_data_points: i64,
}

/// The outcome of one target.
struct Outcome {
    label: String,
    /// Every request was answered `success` with a non-empty result.
    data: bool,
    /// `(endpoint, query)` of the requests that came back empty.
    empty: Vec<(&'static str, String)>,
    /// Requests that failed, with the answer.
    failures: Vec<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn dashboards_dir() -> PathBuf {
    match std::env::var_os("EDGEPROM_DASHBOARDS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dashboards"),
    }
}

/// Every `*.json` dashboard and every ConfigMap (`*.yaml`/`*.yml`) whose `data` holds dashboard
/// JSON, below `dir`, sorted by path.
fn load_dashboards(dir: &Path) -> Vec<Dashboard> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
        match f.extension().and_then(|e| e.to_str()) {
            Some("json") => out.push(Dashboard {
                json: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}")),
                source: name,
            }),
            Some("yaml" | "yml") => {
                let cm: Value =
                    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let data = cm["data"].as_object().cloned().unwrap_or_default();
                for (key, v) in data {
                    let Some(s) = v.as_str().filter(|_| key.ends_with(".json")) else {
                        continue;
                    };
                    out.push(Dashboard {
                        json: serde_json::from_str(s)
                            .unwrap_or_else(|e| panic!("{name} data[{key}]: {e}")),
                        source: format!("{name}[{key}]"),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Panels depth first: nested `panels` (collapsed rows) and old-style `rows[].panels`.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for row in dashboard["rows"].as_array().into_iter().flatten() {
        walk(&row["panels"], &mut out);
    }
    out
}

/// The datasource type a reference resolves to: an object's `type`, else the type a
/// `${datasource}`-style reference names through a datasource variable, else Prometheus (the
/// provisioned default).
fn datasource_type(ds: &Value, vars: &[Value]) -> String {
    if let Some(t) = ds["type"].as_str() {
        return t.to_string();
    }
    let reference = ds["uid"].as_str().or(ds.as_str()).unwrap_or("");
    let name = reference
        .trim_start_matches('$')
        .trim_start_matches('{')
        .trim_end_matches('}');
    vars.iter()
        .find(|v| v["type"] == "datasource" && v["name"] == name)
        .and_then(|v| v["query"].as_str())
        .unwrap_or("prometheus")
        .to_string()
}

/// A Grafana relative time such as `now-30m` as milliseconds before now (1 h if unreadable).
fn relative_ms(from: &str) -> i64 {
    from.strip_prefix("now-")
        .and_then(duration_ms)
        .unwrap_or(3_600_000)
}

/// `15s`, `5m`, `1h`, `2d`, `100ms`, and a bare number of seconds.
fn duration_ms(s: &str) -> Option<i64> {
    let s = s.trim().trim_start_matches('>');
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let mult = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3_600e3,
        "d" => 86_400e3,
        "w" => 604_800e3,
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// Grafana's interval rounding: a calculated interval snaps to the next "nice" value.
fn round_interval(ms: i64) -> i64 {
    const TABLE: [(i64, i64); 23] = [
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
    ];
    TABLE
        .iter()
        .find(|(limit, _)| ms <= *limit)
        .map_or(ms / 3_600_000 * 3_600_000, |(_, v)| *v)
}

/// Grafana's duration text: the largest whole unit (`15s`, `1m`, `90s`, `1500ms`).
fn format_duration(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Grafana's `$__rate_interval`: at least four scrape intervals, and one interval more than the
/// step.
fn rate_interval(interval_ms: i64) -> i64 {
    (interval_ms + SCRAPE_INTERVAL_MS).max(4 * SCRAPE_INTERVAL_MS)
}

/// Escapes a value for a PromQL regex matcher inside a double-quoted string, as Grafana's
/// Prometheus datasource does for multi-value and include-all variables.
fn regex_escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if "\\^$*+?.()|{}[]'".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Escapes a single value for a double-quoted PromQL string.
fn plain_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Variable {
    /// The text `$name` becomes under `sel` in a PromQL expression (`format` from
    /// `${name:format}`).
    fn render(&self, sel: Selection, format: Option<&str>) -> String {
        let values: Vec<String> = if self.include_all && sel == Selection::All {
            if let Some(all) = &self.all_value {
                // A custom all value is used verbatim.
                return all.clone();
            }
            self.options.clone()
        } else if self.multi && sel == Selection::Multi {
            self.options.iter().take(2).cloned().collect()
        } else {
            self.current.clone()
        };
        match format {
            Some("raw") => values.join(","),
            Some("csv") => values.join(","),
            Some("pipe") => values.join("|"),
            Some("regex") => match values.as_slice() {
                [one] => regex_escape(one),
                many => format!(
                    "({})",
                    many.iter()
                        .map(|v| regex_escape(v))
                        .collect::<Vec<_>>()
                        .join("|")
                ),
            },
            _ if !self.multi && !self.include_all => {
                values.first().map_or_else(String::new, |v| plain_escape(v))
            }
            _ => match values.as_slice() {
                [one] => regex_escape(one),
                many => format!(
                    "({})",
                    many.iter()
                        .map(|v| regex_escape(v))
                        .collect::<Vec<_>>()
                        .join("|")
                ),
            },
        }
    }
}

/// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]` of the dashboard's variables;
/// anything else (Grafana's `$__…`) stays for [`builtins`].
fn interpolate(expr: &str, vars: &[Variable], sel: Selection) -> String {
    let find = |name: &str| vars.iter().find(|v| v.name == name);
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let ident_end = |s: &str| {
            s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len())
        };
        let (name, format, len) = if let Some(body) = tail.strip_prefix("${") {
            match body.find('}') {
                Some(end) => {
                    let inner = &body[..end];
                    let (n, f) = match inner.split_once(':') {
                        Some((n, f)) => (n, Some(f)),
                        None => (inner, None),
                    };
                    (n, f, end + 3)
                }
                None => ("", None, 1),
            }
        } else if let Some(body) = tail.strip_prefix("[[") {
            match body.find("]]") {
                Some(end) => {
                    let inner = &body[..end];
                    let (n, f) = match inner.split_once(':') {
                        Some((n, f)) => (n, Some(f)),
                        None => (inner, None),
                    };
                    (n, f, end + 4)
                }
                None => ("", None, 1),
            }
        } else if let Some(body) = tail.strip_prefix('$') {
            let end = ident_end(body);
            (&body[..end], None, end + 1)
        } else {
            ("", None, 1)
        };
        match find(name) {
            Some(v) => out.push_str(&v.render(sel, format)),
            None => out.push_str(&tail[..len]),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Grafana's built-in variables as its Prometheus backend substitutes them: the step, the rate
/// interval and the dashboard range. The longer names go first (`$__interval_ms` before
/// `$__interval`).
fn builtins(expr: &str, step_ms: i64, rate_ms: i64, range_ms: i64) -> String {
    let range_s = (range_ms as f64 / 1000.0).round() as i64;
    let mut e = expr.to_string();
    for (names, value) in [
        (
            ["$__rate_interval_ms", "${__rate_interval_ms}"],
            rate_ms.to_string(),
        ),
        (
            ["$__rate_interval", "${__rate_interval}"],
            format_duration(rate_ms),
        ),
        (["$__interval_ms", "${__interval_ms}"], step_ms.to_string()),
        (["$__interval", "${__interval}"], format_duration(step_ms)),
        (["$__range_ms", "${__range_ms}"], range_ms.to_string()),
        (["$__range_s", "${__range_s}"], range_s.to_string()),
        (["$__range", "${__range}"], format!("{range_s}s")),
    ] {
        for n in names {
            e = e.replace(n, &value);
        }
    }
    e
}

/// What a step-aligned Grafana request looks like for one target: the step and the `$__…` values.
struct Timing {
    step_ms: i64,
    rate_ms: i64,
    start_ms: i64,
    end_ms: i64,
    range_ms: i64,
}

fn timing(t: &PanelTarget, from_ms: i64, to_ms: i64) -> Timing {
    let range_ms = to_ms - from_ms;
    // A fixed interval on the target or panel raises the floor; `$__…` there means "default".
    let min_ms = t
        .min_interval
        .as_deref()
        .filter(|i| !i.contains('$'))
        .and_then(duration_ms)
        .unwrap_or(SCRAPE_INTERVAL_MS);
    let calculated = range_ms / t.max_data_points.max(1);
    let interval = if calculated < min_ms {
        min_ms
    } else {
        round_interval(calculated)
    };
    let safe = range_ms / SAFE_RESOLUTION;
    let step_ms = interval.max(safe).max(1);
    let rate_ms = rate_interval(step_ms);
    // Grafana floors both ends of a range query to a multiple of the step.
    Timing {
        step_ms,
        rate_ms,
        start_ms: from_ms.div_euclid(step_ms) * step_ms,
        end_ms: to_ms.div_euclid(step_ms) * step_ms,
        range_ms,
    }
}

fn secs(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// Talks to the server like Grafana: POST form bodies, a Grafana user agent, bounded waits.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn form(&self, path: &str, form: &[(&str, String)]) -> Result<Value, String> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| format!("POST {path}: {e}"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| format!("POST {path}: HTTP {status}: {text}"))?;
        if !status.is_success() || v["status"] != "success" {
            return Err(format!("POST {path}: HTTP {status}: {text}"));
        }
        Ok(v)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| format!("GET {path}: {e}"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| format!("GET {path}: HTTP {status}: {text}"))?;
        if !status.is_success() || v["status"] != "success" {
            return Err(format!("GET {path}: HTTP {status}: {text}"));
        }
        Ok(v)
    }

    /// A label's values, optionally restricted by `match[]`, over the dashboard range.
    async fn label_values(
        &self,
        label: &str,
        matcher: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, String> {
        let mut q = vec![("start", secs(from_ms)), ("end", secs(to_ms))];
        if let Some(m) = matcher {
            q.push(("match[]", m.to_string()));
        }
        let v = self
            .get(&format!("/api/v1/label/{label}/values"), &q)
            .await?;
        Ok(strings(&v["data"]))
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// A series of an instant result as Grafana's `query_result()` prints it.
fn series_text(s: &Value) -> String {
    let m = s["metric"].as_object().cloned().unwrap_or_default();
    let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
    let labels: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or("")))
        .collect();
    let value = s["value"][1].as_str().unwrap_or("");
    let t = s["value"][0].as_f64().unwrap_or(0.0) * 1000.0;
    format!("{name}{{{}}} {value} {t}", labels.join(", "))
}

/// Resolves the dashboard's template variables in order, as Grafana does on load. Variables of
/// other datasources (Loki) and `datasource`/`adhoc` variables resolve to nothing.
async fn resolve_variables(
    client: &Client,
    list: &[Value],
    from_ms: i64,
    to_ms: i64,
    errors: &mut Vec<String>,
) -> Vec<Variable> {
    let mut vars: Vec<Variable> = Vec::new();
    for v in list {
        let name = v["name"].as_str().unwrap_or("").to_string();
        let kind = v["type"].as_str().unwrap_or("").to_string();
        let query = match &v["query"] {
            Value::String(s) => s.clone(),
            q => q["query"].as_str().unwrap_or("").to_string(),
        };
        let mut options: Vec<String> = match kind.as_str() {
            "query" => {
                if datasource_type(&v["datasource"], list) != "prometheus" {
                    continue;
                }
                // A variable's query may use the variables before it.
                let q = interpolate(&query, &vars, Selection::All);
                match variable_query(client, &q, from_ms, to_ms).await {
                    Ok(o) => o,
                    Err(e) => {
                        errors.push(format!("variable ${name} ({q}): {e}"));
                        Vec::new()
                    }
                }
            }
            "custom" | "interval" => query
                .split(',')
                .map(|o| {
                    let o = o.trim();
                    o.split_once(" : ")
                        .map_or(o, |(_, value)| value)
                        .to_string()
                })
                .filter(|o| !o.is_empty())
                .collect(),
            "constant" | "textbox" => vec![query.clone()],
            _ => continue,
        };
        let regex = v["regex"].as_str().unwrap_or("");
        if !regex.is_empty() {
            options = apply_regex(regex, options);
        }
        let saved = strings(&v["current"]["value"])
            .into_iter()
            .chain(v["current"]["value"].as_str().map(str::to_string))
            .filter(|s| s != "$__all")
            .collect::<Vec<_>>();
        // Grafana keeps the saved selection when it is still an option, else picks the first.
        let current = if !saved.is_empty() && saved.iter().all(|s| options.contains(s)) {
            saved
        } else {
            options.iter().take(1).cloned().collect()
        };
        vars.push(Variable {
            name,
            kind,
            multi: v["multi"].as_bool().unwrap_or(false),
            include_all: v["includeAll"].as_bool().unwrap_or(false),
            all_value: v["allValue"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            options,
            current,
        });
    }
    vars
}

/// A variable's `regex`: `/re/flags`; with a capture group its first group is the value,
/// otherwise values that do not match are dropped.
fn apply_regex(regex: &str, options: Vec<String>) -> Vec<String> {
    let body = regex
        .strip_prefix('/')
        .and_then(|r| r.rsplit_once('/'))
        .map_or(regex, |(r, _)| r);
    let Ok(re) = regex::Regex::new(body) else {
        return options;
    };
    let mut out = Vec::new();
    for o in options {
        if let Some(c) = re.captures(&o) {
            let v = c.get(1).map_or(o.as_str(), |g| g.as_str()).to_string();
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Runs one variable query of Grafana's Prometheus datasource.
async fn variable_query(
    client: &Client,
    q: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<String>, String> {
    let q = q.trim();
    let args = |f: &str| {
        q.strip_prefix(f)
            .and_then(|r| r.trim().strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(a) = args("label_values") {
        // `label_values(selector, label)`: the label is after the last comma.
        return match a.rsplit_once(',') {
            Some((selector, label)) => {
                client
                    .label_values(label.trim(), Some(selector.trim()), from_ms, to_ms)
                    .await
            }
            None => client.label_values(a, None, from_ms, to_ms).await,
        };
    }
    if let Some(a) = args("metrics") {
        let all = client
            .label_values("__name__", None, from_ms, to_ms)
            .await?;
        return Ok(apply_regex(a, all));
    }
    if args("label_names").is_some() {
        let v = client
            .get(
                "/api/v1/labels",
                &[("start", secs(from_ms)), ("end", secs(to_ms))],
            )
            .await?;
        return Ok(strings(&v["data"]));
    }
    if let Some(a) = args("query_result") {
        let v = client
            .form(
                "/api/v1/query",
                &[("query", a.to_string()), ("time", secs(to_ms))],
            )
            .await?;
        return Ok(v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(series_text)
            .collect());
    }
    Err("not a variable query this test knows".into())
}

/// Metric names an expression selects: identifiers that are not functions, keywords, label
/// names in braces or grouping lists. Only used to explain an empty answer.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut cleaned = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace == 0 && depth_bracket == 0 => cleaned.push(c),
            _ => {}
        }
        if (c == '{' || c == '[') && !in_string {
            cleaned.push(' ');
        }
    }
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 6] = ["and", "or", "unless", "offset", "bool", "atan2"];
    let mut out = BTreeSet::new();
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for c in cleaned.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
        }
    }
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if GROUPING.contains(&t.as_str()) && tokens.get(i + 1).is_some_and(|n| n == "(") {
            // Skip the label list.
            while i < tokens.len() && tokens[i] != ")" {
                i += 1;
            }
        } else if t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && !KEYWORDS.contains(&t.as_str())
            && tokens.get(i + 1).is_none_or(|n| n != "(")
        {
            out.insert(t.clone());
        }
        i += 1;
    }
    out
}

/// Sends one target under `sel`: a range query (and an instant one for instant targets).
async fn play(
    client: &Client,
    t: &PanelTarget,
    vars: &[Variable],
    sel: Selection,
    from_ms: i64,
    to_ms: i64,
    outcome: &mut Outcome,
) {
    let tm = timing(t, from_ms, to_ms);
    let expr = builtins(
        &interpolate(&t.expr, vars, sel),
        tm.step_ms,
        tm.rate_ms,
        tm.range_ms,
    );
    let mut requests = Vec::new();
    if t.range || !t.instant {
        requests.push((
            "/api/v1/query_range",
            vec![
                ("query", expr.clone()),
                ("start", secs(tm.start_ms)),
                ("end", secs(tm.end_ms)),
                ("step", secs(tm.step_ms)),
            ],
        ));
    }
    if t.instant {
        requests.push((
            "/api/v1/query",
            vec![("query", expr.clone()), ("time", secs(to_ms))],
        ));
    }
    for (path, form) in requests {
        match client.form(path, &form).await {
            Ok(v) => {
                let result = &v["data"]["result"];
                let empty = match v["data"]["resultType"].as_str() {
                    Some("scalar" | "string") => false,
                    _ => result.as_array().is_none_or(Vec::is_empty),
                };
                if empty {
                    outcome.data = false;
                    outcome.empty.push((path, expr.clone()));
                }
            }
            Err(e) => {
                outcome.data = false;
                outcome.failures.push(format!("{expr}\n      {e}"));
            }
        }
    }
}

/// Generates [`DATA_MINUTES`] of every generator job, imports it ending now and starts the
/// binary on it with nothing to scrape.
async fn server_with_generated_data() -> Edgeprom {
    let dir = temp_dir("dashboards");
    let rec = dir.join("rec");
    let data = dir.join("data");
    let (d, r, dd) = (dir.clone(), rec.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        run(
            &d,
            &[
                "generate".into(),
                format!("--out={}", r.display()),
                "--workers=4".into(),
                format!("--duration-seconds={}", DATA_MINUTES * 60),
                "--seed=1".into(),
            ],
            Duration::from_secs(60),
        );
        let out = run(
            &d,
            &[
                "replay".into(),
                "--import".into(),
                "--shift=now".into(),
                format!("--storage.tsdb.path={}", dd.display()),
                r.display().to_string(),
            ],
            Duration::from_secs(120),
        );
        assert!(out.contains("(0 rejected)"), "{out}");
    })
    .await
    .expect("generate and import");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("config");
    start(&dir, &config, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_target_answers_with_data() {
    let started = Instant::now();
    let dir = dashboards_dir();
    let dashboards = load_dashboards(&dir);
    let external = std::env::var("EDGEPROM_DASHBOARDS_URL").ok();
    let server: Option<Edgeprom> = match &external {
        Some(_) => None,
        None => Some(server_with_generated_data().await),
    };
    let base = match (&external, &server) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(ep)) => ep.base.clone(),
        (None, None) => unreachable!("a server was started"),
    };
    let client = Client {
        http: reqwest::Client::builder()
            .user_agent("Grafana/12.2.0")
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        base,
    };
    let setup = started.elapsed();
    let to_ms = now_ms();

    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut variables = 0;
    let mut declared = 0;
    let mut requests = 0;
    let mut prometheus_dashboards = 0;
    for (di, d) in dashboards.iter().enumerate() {
        let from_ms = to_ms - relative_ms(d.json["time"]["from"].as_str().unwrap_or("now-1h"));
        let var_list: Vec<Value> = d.json["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut targets = Vec::new();
        for p in panels(&d.json) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let ds = if t["datasource"].is_null() {
                    &p["datasource"]
                } else {
                    &t["datasource"]
                };
                let kind = datasource_type(ds, &var_list);
                let expr = t["expr"].as_str().unwrap_or("").trim().to_string();
                let skip = if kind != "prometheus" {
                    Some(Skip::NotPrometheus(kind))
                } else if t["hide"].as_bool() == Some(true) {
                    Some(Skip::Hidden)
                } else if expr.is_empty() {
                    Some(Skip::NoExpression)
                } else {
                    None
                };
                if let Some(s) = skip {
                    *skipped.entry(s.describe()).or_default() += 1;
                    continue;
                }
                let width = p["gridPos"]["w"].as_i64().unwrap_or(24);
                targets.push(PanelTarget {
                    dashboard: di,
                    panel: p["title"].as_str().unwrap_or("").to_string(),
                    expr,
                    instant: t["instant"].as_bool().unwrap_or(false),
                    range: t["range"].as_bool().unwrap_or(false),
                    min_interval: t["interval"]
                        .as_str()
                        .or(p["interval"].as_str())
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    // Grafana asks for about one point per pixel of the panel's width.
                    max_data_points: p["maxDataPoints"].as_i64().unwrap_or(width * 1920 / 24),
                });
            }
        }
        if targets.is_empty() {
            continue;
        }
        prometheus_dashboards += 1;
        declared += var_list.len();
        let vars = resolve_variables(&client, &var_list, from_ms, to_ms, &mut errors).await;
        for v in &vars {
            variables += 1;
            println!(
                "  {} ${} ({}): {} option(s) {:?}",
                d.source,
                v.name,
                v.kind,
                v.options.len(),
                v.options.iter().take(4).collect::<Vec<_>>()
            );
        }
        for t in &targets {
            let mut o = Outcome {
                label: format!("{} / {}", dashboards[t.dashboard].source, t.panel),
                data: true,
                empty: Vec::new(),
                failures: Vec::new(),
            };
            play(&client, t, &vars, Selection::All, from_ms, to_ms, &mut o).await;
            requests += 1;
            // A multi-value selection differs from "All" only where a multi variable is used.
            let multi = vars.iter().any(|v| {
                v.multi
                    && v.options.len() > 1
                    && interpolate(&t.expr, std::slice::from_ref(v), Selection::All) != t.expr
            });
            if multi {
                play(&client, t, &vars, Selection::Multi, from_ms, to_ms, &mut o).await;
                requests += 1;
            }
            outcomes.push(o);
        }
    }

    // Everything the server knows, to explain empty answers.
    let known: BTreeSet<String> = client
        .label_values("__name__", None, to_ms - 3_600_000, to_ms)
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let with_data = outcomes.iter().filter(|o| o.data).count();
    let total = outcomes.len();
    println!(
        "\n{with_data} of {total} Prometheus targets of {prometheus_dashboards} dashboards answered with data \
         ({requests} target runs; {declared} template variables, {variables} resolved through the API \
         or their definition, the rest pick the datasource; skipped: {skipped:?}); \
         setup {setup:.1?}, total {:.1?}",
        started.elapsed()
    );
    let mut failures = Vec::new();
    for o in &outcomes {
        for f in &o.failures {
            failures.push(format!("  {}: {f}", o.label));
        }
        if o.data {
            continue;
        }
        for (path, e) in &o.empty {
            let missing: Vec<String> = metric_names(e)
                .into_iter()
                .filter(|m| !known.contains(m))
                .collect();
            let reason = if missing.is_empty() {
                "empty: every metric exists, but the selectors or vector matching select nothing"
                    .to_string()
            } else {
                format!("empty: metric {} not generated", missing.join(", "))
            };
            println!("  {}: {reason}\n      {path} {e}", o.label);
        }
    }
    assert!(
        errors.is_empty(),
        "variable queries failed:\n{}",
        errors.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} queries did not answer success:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if std::env::var_os("EDGEPROM_DASHBOARDS_DIR").is_none() {
        // The checked-in dashboards: 18 Prometheus dashboards (and one Loki one) with 303
        // targets, one of them without an expression. Catches a walker that loses panels.
        assert_eq!(prometheus_dashboards, 18, "dashboards found");
        assert_eq!(total, 302, "targets found");
        // 21 variables, 9 of them choosing the datasource.
        assert_eq!((declared, variables), (21, 12), "template variables");
    }
    assert!(total > 0, "no Prometheus targets under {}", dir.display());
    let coverage = with_data as f64 / total as f64;
    assert!(
        coverage >= MIN_COVERAGE,
        "only {with_data} of {total} targets ({:.1} %) returned data",
        coverage * 100.0
    ); // Only a passing run cleans up: a failing one leaves the data and the server's log.
    if let Some(ep) = server {
        let dir = ep.dir.clone();
        drop(ep);
        let _ = std::fs::remove_dir_all(dir);
    }
}
