//! The query part of `bench/compare`: sends the same dashboard queries to several
//! Prometheus-compatible servers, times them (median of `--reps` runs after one untimed run) and
//! compares the answers of `--subject` with those of `--reference` field by field.
//!
//! ```sh
//! compare-query --server edgeprom=http://127.0.0.1:19090 --server prometheus=http://127.0.0.1:19091 \
//!   --server victoriametrics=http://127.0.0.1:18428?nocache=1 \
//!   --data-start 1767225600 --data-end 1767229200 --json query.json
//! ```
//!
//! A query string after the URL (`?nocache=1`) is sent with every request to that server:
//! VictoriaMetrics caches range results, so its latency is measured with the cache off.
//!
//! Evaluation times sit half a second off the sample grid, so Prometheus 3.x's left-open windows
//! (edgeprom) select what 2.x's closed ones select. Points of `rate`/`increase`/`delta` whose window
//! reaches the series' first sample are left out of the comparison: Prometheus 2.51 changed the
//! extrapolation there (prometheus#13725). Only the standard library speaks HTTP here (one
//! connection per request, `Connection: close`), so the timing holds no client-side pooling.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

/// Relative tolerance of value comparisons (NaN equals NaN).
const REL_TOL: f64 = 1e-9;

/// The queries: dashboard panels of the shared Dynamo dashboards (`fixtures/dashboards/`,
/// `shared/dynamo-corpus/notes/queries.tsv`) with Grafana's variables resolved to "All" and
/// `$__rate_interval` to 1m (15 s scrape interval), or 5m where the panel writes 5m.
const QUERIES: &[(&str, &str)] = &[
    (
        "dynamo: frontend RPS by model",
        "sum by (model) (rate(dynamo_frontend_requests_total[1m]))",
    ),
    (
        "dynamo: E2E latency p99",
        "histogram_quantile(0.99, sum by (le) (rate(dynamo_frontend_request_duration_seconds_bucket[1m])))",
    ),
    (
        "dynamo: TTFT p50 by model",
        "histogram_quantile(0.50, sum by (model, le) (rate(dynamo_frontend_time_to_first_token_seconds_bucket[1m]))) * 1000",
    ),
    (
        "dynamo: ITL p90",
        "histogram_quantile(0.90, sum(rate(dynamo_frontend_inter_token_latency_seconds_bucket[1m])) by (le)) * 1000",
    ),
    (
        "dynamo: E2E latency avg (clamp_min guard)",
        "sum(rate(dynamo_frontend_request_duration_seconds_sum[1m])) / clamp_min(sum(rate(dynamo_frontend_request_duration_seconds_count[1m])), 1)",
    ),
    (
        "dynamo: success rate (or vector(0))",
        r#"(sum(increase(dynamo_frontend_requests_total[5m])) - (sum(increase(dynamo_frontend_requests_total{error_type="internal"}[5m])) or vector(0))) / sum(increase(dynamo_frontend_requests_total[5m])) * 100"#,
    ),
    (
        "dynamo: worker requests per worker",
        "sum by (instance) (rate(dynamo_component_requests_total[1m]))",
    ),
    (
        "dynamo: worker duration p99 per worker",
        "histogram_quantile(0.99, sum by (instance, le) (rate(dynamo_component_request_duration_seconds_bucket[1m])))",
    ),
    (
        "dynamo: worker duration p99 all backends",
        "histogram_quantile(0.99, sum by (le) (rate(dynamo_component_request_duration_seconds_bucket[1m])))",
    ),
    (
        "dynamo: worker duration avg per worker (clamp_min)",
        "sum by (instance) (rate(dynamo_component_request_duration_seconds_sum[1m])) / clamp_min(sum by (instance) (rate(dynamo_component_request_duration_seconds_count[1m])), 1)",
    ),
    (
        "dynamo: worker errors by type",
        "sum by (instance, error_type) (rate(dynamo_component_errors_total[1m]))",
    ),
    (
        "dynamo: KV hit rate p90",
        "histogram_quantile(0.90, sum(rate(dynamo_component_router_kv_hit_rate_bucket[1m])) by (le))",
    ),
    (
        "failover: active engines (or vector(0))",
        r#"count(dynamo_component_engine_failover_state{state="active"} == 1) or vector(0)"#,
    ),
    (
        "disagg: prefill p99 per worker, joined to running pods",
        r#"(1000 * histogram_quantile(0.99, rate(dynamo_component_request_duration_seconds_bucket{dynamo_component="prefill",dynamo_endpoint="generate"}[5m]))) * on(pod, namespace) group_left() kube_pod_status_phase{phase="Running"}"#,
    ),
    (
        "disagg: frontend avg TTFT, joined",
        r#"((1000 * (rate(dynamo_frontend_time_to_first_token_seconds_sum[5m]) / rate(dynamo_frontend_time_to_first_token_seconds_count[5m])))) * on(pod, namespace) group_left() kube_pod_status_phase{phase="Running"}"#,
    ),
    (
        "disagg: NVLink bandwidth per GPU",
        "(rate(DCGM_FI_PROF_NVLINK_TX_BYTES[1m]) + rate(DCGM_FI_PROF_NVLINK_RX_BYTES[1m])) / 1e9",
    ),
    ("dcgm: average GPU utilization", "avg(DCGM_FI_DEV_GPU_UTIL)"),
    (
        "sglang: TTFT p99",
        "histogram_quantile(0.99, sum by (le) (rate(sglang:time_to_first_token_seconds_bucket[1m])))",
    ),
    (
        "operator: success ratio by model",
        r#"100 * sum by (model) (rate(dynamo_frontend_requests_total{status="success"}[5m])) / sum by (model) (rate(dynamo_frontend_requests_total[5m]))"#,
    ),
    ("up by job", "count by (job) (up)"),
];

#[derive(Parser)]
#[command(about = "Time dashboard queries against several servers and compare two of them")]
struct Args {
    /// `name=http://host:port[?extra=params]`, repeatable; order is the table's column order.
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
    /// First sample time of the data (Unix seconds).
    #[arg(long, default_value_t = 0)]
    data_start: i64,
    /// Last sample time of the data (Unix seconds).
    #[arg(long, default_value_t = 0)]
    data_end: i64,
    /// Instead of the queries: print each server's number of stored samples in the 2 h before
    /// this time, as `name count` lines. It sums `count_over_time` per metric name (100 names per
    /// query), since one `count_over_time({__name__=~".+"}[2h])` would hold series that differ
    /// only by their dropped names, an error in Prometheus.
    #[arg(long)]
    count_at: Option<String>,
    /// Range query step in seconds.
    #[arg(long, default_value_t = 15)]
    step: i64,
    /// Timed runs per query and server (after one untimed run); the median is reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Server whose answers are the reference.
    #[arg(long, default_value = "prometheus")]
    reference: String,
    /// Server compared with the reference.
    #[arg(long, default_value = "edgeprom")]
    subject: String,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

struct Server {
    name: String,
    addr: String,
    extra: String,
}

fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The samples each server holds in the 2 h before `at`, summed per metric name.
fn count_samples(server: &Server, at: &str, timeout: Duration) -> Result<u64, String> {
    let get_json = |path: &str, form: &[(&str, String)]| -> Result<Value, String> {
        let (status, body) = post(server, path, form, timeout)?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| format!("json: {e}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("{path}: HTTP {status}: {}", v["error"]));
        }
        Ok(v)
    };
    let names = get_json("/api/v1/label/__name__/values", &[])?;
    let names: Vec<String> = names["data"]
        .as_array()
        .ok_or("no names")?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let mut total = 0u64;
    for batch in names.chunks(100) {
        let expr = batch
            .iter()
            .map(|n| format!("sum(count_over_time({{__name__={n:?}}}[2h]))"))
            .collect::<Vec<_>>()
            .join(" + ");
        let v = get_json(
            "/api/v1/query",
            &[("query", expr), ("time", at.to_string())],
        )?;
        let value = v["data"]["result"][0]["value"][1]
            .as_str()
            .ok_or_else(|| format!("no value for a batch starting with {}", batch[0]))?;
        total += value.parse::<f64>().map_err(|e| e.to_string())? as u64;
    }
    Ok(total)
}

/// POSTs a form (GETs when it is empty); returns the HTTP status and body.
fn post(
    server: &Server,
    path: &str,
    form: &[(&str, String)],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", pct_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let target = if server.extra.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", server.extra)
    };
    let mut s =
        TcpStream::connect(&server.addr).map_err(|e| format!("connect {}: {e}", server.addr))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_nodelay(true).ok();
    // No form: a GET (the label-values endpoint takes only GET in Prometheus).
    let req = if form.is_empty() {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        )
    } else {
        format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            server.addr,
            body.len()
        )
    };
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_str = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size_str:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Whether `expr` calls `rate`, `increase` or `delta` (extrapolation changed in 2.51).
fn extrapolates(expr: &str) -> bool {
    ["rate(", "increase(", "delta("].iter().any(|f| {
        expr.match_indices(f).any(|(i, _)| {
            !expr[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    })
}

/// Seconds of a PromQL duration such as `5m` or `1m30s` (0 if it is not one).
fn duration_s(d: &str) -> i64 {
    let (mut total, mut n) = (0, 0);
    let mut chars = d.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(digit) = c.to_digit(10) {
            n = n * 10 + i64::from(digit);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0
            }
            ('s', _) => 1,
            ('m', _) => 60,
            ('h', _) => 3600,
            ('d', _) => 86_400,
            _ => return 0,
        };
        total += n * unit;
        n = 0;
    }
    total
}

/// The longest range selector of `expr`, in seconds.
fn reach_s(expr: &str) -> i64 {
    expr.split('[')
        .skip(1)
        .filter_map(|s| s.split([']', ':']).next())
        .map(duration_s)
        .max()
        .unwrap_or(0)
}

type Series = (BTreeMap<String, String>, Vec<(f64, String)>);

/// A reduced answer: `Ok((resultType, series))` or `Err(error)`.
type Answer = Result<(String, Vec<Series>), String>;

/// `Ok((resultType, series sorted by labels))` or `Err(errorType or transport error)`.
fn outcome(v: &Value) -> Answer {
    if v["status"] != "success" {
        return Err(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["error"].as_str().unwrap_or("?")
        ));
    }
    let rt = v["data"]["resultType"].as_str().unwrap_or("?").to_string();
    let result = &v["data"]["result"];
    let point = |p: &Value| {
        (
            p[0].as_f64().unwrap_or(f64::NAN),
            p[1].as_str().unwrap_or("?").to_string(),
        )
    };
    let mut series: Vec<Series> = match rt.as_str() {
        "vector" | "matrix" => result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let labels = s["metric"]
                            .as_object()
                            .map(|o| {
                                o.iter()
                                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let points = if rt == "vector" {
                            vec![point(&s["value"])]
                        } else {
                            s["values"]
                                .as_array()
                                .map(|ps| ps.iter().map(point).collect())
                                .unwrap_or_default()
                        };
                        (labels, points)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![(BTreeMap::new(), vec![point(result)])],
    };
    series.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((rt, series))
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else {
        return false;
    };
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    x == y || (x.is_finite() && y.is_finite() && (x - y).abs() <= REL_TOL * x.abs().max(y.abs()))
}

/// Compares subject `s` with reference `r`, leaving out points at or before `skip_until`.
/// Returns (points compared, first difference if any).
fn compare(s: &Answer, r: &Answer, skip_until: f64) -> (usize, Option<String>) {
    let (s, r) = match (s, r) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(a), Err(b)) if a.split(':').next() == b.split(':').next() => return (0, None),
        (a, b) => {
            return (
                0,
                Some(format!(
                    "status: {} vs {}",
                    a.as_ref().map(|_| "success").unwrap_or_else(|e| e),
                    b.as_ref().map(|_| "success").unwrap_or_else(|e| e)
                )),
            );
        }
    };
    if s.0 != r.0 {
        return (0, Some(format!("resultType {} vs {}", s.0, r.0)));
    }
    let keep = |ser: &[Series]| -> Vec<Series> {
        ser.iter()
            .map(|(l, p)| {
                (
                    l.clone(),
                    p.iter()
                        .filter(|x| x.0 > skip_until)
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|x| !x.1.is_empty())
            .collect()
    };
    let (ss, rs) = (keep(&s.1), keep(&r.1));
    let mut points = 0;
    for (l, _) in &rs {
        if !ss.iter().any(|x| &x.0 == l) {
            return (points, Some(format!("series {l:?} missing in subject")));
        }
    }
    for (l, ps) in &ss {
        let Some((_, pr)) = rs.iter().find(|x| &x.0 == l) else {
            return (points, Some(format!("extra series {l:?} in subject")));
        };
        if ps.len() != pr.len() {
            return (
                points,
                Some(format!("{l:?}: {} points vs {}", ps.len(), pr.len())),
            );
        }
        for (a, b) in ps.iter().zip(pr) {
            points += 1;
            if a.0 != b.0 {
                return (points, Some(format!("{l:?}: timestamp {} vs {}", a.0, b.0)));
            }
            if !same_value(&a.1, &b.1) {
                return (
                    points,
                    Some(format!("{l:?} at {}: {} vs {}", a.0, a.1, b.1)),
                );
            }
        }
    }
    (points, None)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout);
    let servers: Vec<Server> = args
        .servers
        .iter()
        .map(|s| {
            let (name, url) = s.split_once('=').expect("--server name=url");
            let url = url.trim_start_matches("http://");
            let (hostpath, extra) = url.split_once('?').unwrap_or((url, ""));
            Server {
                name: name.to_string(),
                addr: hostpath.trim_end_matches('/').to_string(),
                extra: extra.to_string(),
            }
        })
        .collect();
    if let Some(at) = &args.count_at {
        for srv in &servers {
            match count_samples(srv, at, timeout) {
                Ok(n) => println!("{} {n}", srv.name),
                Err(e) => {
                    eprintln!("{}: {e}", srv.name);
                    println!("{} 0", srv.name);
                }
            }
        }
        return;
    }
    // Off the sample grid by half a second; instant near the end, range over the whole data.
    let instant_t = format!("{}.5", args.data_end - 30);
    let range_start = format!("{}.5", args.data_start);
    let range_end = format!("{}.5", args.data_end - 15);
    let mut rows = Vec::new();
    // name -> (instant medians, range medians)
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut agreed = (0, 0);
    for (i, (title, expr)) in QUERIES.iter().enumerate() {
        let mut row = json!({"n": i + 1, "title": title, "expr": expr, "servers": {}});
        let mut answers: BTreeMap<String, [Answer; 2]> = BTreeMap::new();
        for srv in &servers {
            let mut per_kind = Vec::new();
            let mut kept = Vec::new();
            for kind in ["instant", "range"] {
                let (path, form) = if kind == "instant" {
                    (
                        "/api/v1/query",
                        vec![("query", expr.to_string()), ("time", instant_t.clone())],
                    )
                } else {
                    (
                        "/api/v1/query_range",
                        vec![
                            ("query", expr.to_string()),
                            ("start", range_start.clone()),
                            ("end", range_end.clone()),
                            ("step", args.step.to_string()),
                        ],
                    )
                };
                let mut times = Vec::new();
                let mut answer = Err("no run".to_string());
                let mut bytes = 0;
                for rep in 0..=args.reps {
                    let t0 = Instant::now();
                    let r = post(srv, path, &form, timeout);
                    let dt = t0.elapsed().as_secs_f64();
                    if rep > 0 {
                        times.push(dt);
                    } else {
                        answer = match r {
                            Ok((_, body)) => {
                                bytes = body.len();
                                serde_json::from_slice::<Value>(&body)
                                    .map_err(|e| format!("json: {e}"))
                                    .and_then(|v| outcome(&v))
                            }
                            Err(e) => Err(format!("transport: {e}")),
                        };
                        if answer.is_err() {
                            break;
                        }
                    }
                }
                let med = median(times);
                let nseries = answer.as_ref().map(|a| a.1.len()).unwrap_or(0);
                let e = sums.entry(srv.name.clone()).or_insert((0.0, 0.0));
                if kind == "instant" {
                    e.0 += med;
                } else {
                    e.1 += med;
                }
                per_kind.push(json!({
                    "kind": kind,
                    "median_s": med,
                    "series": nseries,
                    "bytes": bytes,
                    "error": answer.as_ref().err(),
                }));
                if let Err(e) = &answer {
                    eprintln!("{} #{} {kind}: {e}", srv.name, i + 1);
                }
                kept.push(answer);
            }
            row["servers"][&srv.name] = json!(per_kind);
            let mut it = kept.into_iter();
            answers.insert(srv.name.clone(), [it.next().unwrap(), it.next().unwrap()]);
        }
        if let (Some(s), Some(r)) = (answers.get(&args.subject), answers.get(&args.reference)) {
            let skip = if extrapolates(expr) {
                (args.data_start + reach_s(expr)) as f64
            } else {
                0.0
            };
            let (pi, di) = compare(&s[0], &r[0], skip);
            let (pr, dr) = compare(&s[1], &r[1], skip);
            let ok = di.is_none() && dr.is_none();
            agreed.1 += 1;
            if ok {
                agreed.0 += 1;
            }
            row["agree"] = json!({
                "ok": ok,
                "points_compared": pi + pr,
                "instant_diff": di,
                "range_diff": dr,
            });
        }
        rows.push(row);
    }

    // Markdown.
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    println!(
        "Instant at {instant_t}; range {range_start}..{range_end} step {}s; median of {} runs, ms.\n",
        args.step, args.reps
    );
    let mut head = "| # | query |".to_string();
    let mut sep = "|---|---|".to_string();
    for kind in ["instant", "1 h range"] {
        for n in &names {
            head.push_str(&format!(" {n} {kind} |"));
            sep.push_str("---|");
        }
    }
    head.push_str(&format!(" {} = {} |", args.subject, args.reference));
    sep.push_str("---|");
    println!("{head}\n{sep}");
    for row in &rows {
        let mut line = format!("| {} | {} |", row["n"], row["title"].as_str().unwrap_or(""));
        for k in 0..2 {
            for n in &names {
                let c = &row["servers"][*n][k];
                if c["error"].is_null() {
                    line.push_str(&format!(
                        " {:.1} ({}) |",
                        c["median_s"].as_f64().unwrap_or(f64::NAN) * 1e3,
                        c["series"]
                    ));
                } else {
                    line.push_str(" error |");
                }
            }
        }
        let a = &row["agree"];
        line.push_str(&match a["ok"].as_bool() {
            Some(true) => format!(" yes ({} points) |", a["points_compared"]),
            Some(false) => format!(
                " **no**: {} |",
                a["instant_diff"]
                    .as_str()
                    .or(a["range_diff"].as_str())
                    .unwrap_or("?")
                    .replace('|', "\\|")
            ),
            None => " - |".to_string(),
        });
        println!("{line}");
    }
    let mut total = "| | **sum of medians** |".to_string();
    for k in 0..2 {
        for n in &names {
            let s = sums.get(*n).copied().unwrap_or_default();
            total.push_str(&format!(
                " **{:.1}** |",
                if k == 0 { s.0 } else { s.1 } * 1e3
            ));
        }
    }
    total.push_str(&format!(" {}/{} agree |", agreed.0, agreed.1));
    println!("{total}");
    println!("\n(n) = series in the answer.");

    if let Some(path) = &args.json {
        let out = json!({
            "instant_time": instant_t,
            "range": {"start": range_start, "end": range_end, "step": args.step},
            "reps": args.reps,
            "queries": rows,
            "sum_of_medians_s": sums.iter().map(|(k, v)| (k.clone(), json!({"instant": v.0, "range": v.1}))).collect::<serde_json::Map<_, _>>(),
            "agree": {"ok": agreed.0, "of": agreed.1, "subject": args.subject, "reference": args.reference},
        });
        std::fs::write(path, serde_json::to_vec_pretty(&out).expect("json")).expect("write json");
    }
}
