//! edgeprom against Prometheus 2.x on the same data, field by field.
//!
//! One Dynamo-shaped OpenMetrics corpus (the fixtures generator, ending within 2 h of now, with one
//! backend unreachable for 7 minutes) is loaded into edgeprom with `edgeprom import openmetrics`
//! and into Prometheus with `promtool tsdb create-blocks-from openmetrics`; both servers start on
//! loopback ports with no scrape targets. Then the panel queries of Dynamo's shared dashboards
//! (variables substituted the way Grafana does) run against both, as instant queries at four times
//! and as range queries with 15 s and 60 s steps, plus the lookups Grafana's variables and metric
//! browser make (`/api/v1/labels`, `/api/v1/label/<name>/values`, `/api/v1/series`) and error
//! answers. `cargo test -p edgeprom --test prometheus_compare -- --nocapture` prints the table.
//!
//! What is compared: `status`, `errorType`, `resultType`; each series' metric labels (as sets;
//! series are matched by label set); each timestamp exactly; each value parsed as a float, equal
//! when both are NaN, both the same infinity, or within a relative difference of [`REL_TOL`]; for
//! an instant query that sorts, the sequence of values in the server's order. Not compared: error
//! messages, `warnings`/`infos` (Prometheus 2.42 has no annotations), the order of series of
//! unsorted queries and of equal values (PromQL does not define them).
//!
//! Why the comparison is meaningful between 2.x and edgeprom's 3.x semantics:
//! - every evaluation time is half a second off the corpus's whole-second sample timestamps, so
//!   3.x's left-open range and lookback windows select exactly the samples 2.x's left-closed ones do
//!   (Prometheus 3.0 migration guide, "Range selectors and lookback exclude samples coinciding
//!   with the left boundary");
//! - the generator writes `le` values in the canonical form (`1.0`, `+Inf`) Prometheus 3
//!   normalises to, so 2.x, which keeps label values as written, stores the same label sets;
//! - no query uses a function whose semantics changed (`holt_winters`, regex `.` and newlines,
//!   native histograms);
//! - two changes inside 2.x are kept out, each where it applies: `rate`/`increase`/`delta`
//!   windows that hold a series' first sample (extrapolation changed in 2.51, Prometheus #13725)
//!   and the metric name after `atan2` (dropped since 2.47).
//!
//! Without `prometheus` and `promtool` on `PATH` the test prints why it skipped and passes, unless
//! `EDGEPROM_REQUIRE_PROMETHEUS=1` (CI sets it and installs Debian's `prometheus` package).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{free_port, on_path, start, start_prometheus, temp_dir};
use edgeprom_fixtures::corpus::{Config, Corpus, canonical_le};
use serde_json::Value;

/// Largest relative difference accepted between two finite values. Both engines compute in IEEE
/// doubles but sum in different orders (Prometheus 3 and edgeprom use Kahan compensation in `sum`
/// and `avg`, 2.42 does not), which moves results by a few ulps: on this corpus about 900 of
/// 50,000 values differ in their last digits, by at most 1.3e-15 relative (the summary line
/// reports both). 1e-9 leaves room for cancellation in differences of sums and is still far below
/// any semantic difference (an off-by-one sample moves a rate by percents).
const REL_TOL: f64 = 1e-9;

/// Corpus shape: 4 backend workers (so `sum by (instance, le)` has several histograms per model)
/// and 25 minutes, enough for `[$__range]` = 20 m and `[5m]` windows.
const WORKERS: usize = 4;
const DURATION_S: i64 = 25 * 60;

/// Both stores cut blocks at multiples of 2 h. The corpus ends within 2 h before now and crosses
/// such a boundary 17 minutes after its start, after the gap, so that every run reads the same
/// two blocks the same way (windows in one block and across both).
const BLOCK_S: i64 = 7200;
const BLOCK_SPLIT_S: i64 = 1020;

/// The backend whose samples are missing from `GAP.0` to `GAP.1` seconds after the corpus start
/// (multiples of its 6 s interval); the middle instant query falls in the gap, more than the 5 m
/// lookback after its last sample.
const GAP_INSTANCE: &str = "instance=\"vllm-worker-001:8081\"";
const GAP: (i64, i64) = (480, 900);

/// Writes OpenMetrics lines through, except the samples of one target inside a time span.
struct Gap<W: Write> {
    out: W,
    pending: Vec<u8>,
    instance: &'static str,
    from: i64,
    to: i64,
    dropped: u64,
}

/// Whether `line` is a sample of `instance` timestamped in `[from, to)`.
fn in_gap(line: &str, instance: &str, from: i64, to: i64) -> bool {
    // A sample line ends in its timestamp; `# TYPE` and `# EOF` lines do not.
    !line.starts_with('#')
        && line
            .trim_end()
            .rsplit_once(' ')
            .and_then(|(_, t)| t.parse::<i64>().ok())
            .is_some_and(|t| from <= t && t < to)
        && line.contains(instance)
}

impl<W: Write> Write for Gap<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(buf.len());
        };
        let rest = self.pending.split_off(end + 1);
        let lines = std::mem::replace(&mut self.pending, rest);
        let text = std::str::from_utf8(&lines)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        for line in text.split_inclusive('\n') {
            if in_gap(line, self.instance, self.from, self.to) {
                self.dropped += 1;
            } else {
                self.out.write_all(line.as_bytes())?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // The corpus ends with a newline; whatever is left is written as it is.
        let rest = std::mem::take(&mut self.pending);
        self.out.write_all(&rest)?;
        self.out.flush()
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One panel query as the dashboard holds it, before Grafana substitutes variables.
struct Panel {
    /// Dashboard file (in `shared/dynamo-corpus/`) and panel title, or why the query was added.
    source: &'static str,
    expr: &'static str,
    /// Whether the corpus makes the result non-empty: a query that should return series and
    /// returns none on both sides would compare nothing.
    data: bool,
}

const fn p(source: &'static str, expr: &'static str) -> Panel {
    Panel {
        source,
        expr,
        data: true,
    }
}

/// The panels. `$model` comes from `label_values(dynamo_frontend_requests_total, model)` as
/// Grafana resolves it; `$__rate_interval` and `$__range` are what Grafana sends for a 15 s
/// scrape interval and a 20 minute dashboard range.
const PANELS: &[Panel] = &[
    // dynamo.json (@031236a9 copy with the model variable): stat panels over the dashboard range.
    p(
        "dynamo.json Request Success Rate",
        r#"(sum(increase(dynamo_frontend_requests_total{model="$model"}[$__range])) - (sum(increase(dynamo_frontend_requests_total{model="$model", error_type="internal"}[$__range])) or vector(0))) / sum(increase(dynamo_frontend_requests_total{model="$model"}[$__range])) * 100"#,
    ),
    p(
        "dynamo.json Total Requests",
        r#"sum(increase(dynamo_frontend_requests_total{model="$model"}[$__range]))"#,
    ),
    p(
        "dynamo.json Average TTFT (multi-line)",
        "  sum(increase(dynamo_frontend_time_to_first_token_seconds_sum{model=\"$model\"}[$__range]))\n  /\n  sum(increase(dynamo_frontend_time_to_first_token_seconds_count{model=\"$model\"}[$__range]))\n  * 1000",
    ),
    p(
        "dynamo.json Frontend RPS",
        r#"sum by(model) (rate(dynamo_frontend_requests_total{model="$model"}[$__rate_interval]))"#,
    ),
    p(
        "dynamo.json E2E Request Latency p99",
        r#"histogram_quantile(0.99, sum by(le) (rate(dynamo_frontend_request_duration_seconds_bucket{model="$model"}[$__rate_interval])))"#,
    ),
    p(
        "dynamo.json E2E Request Latency avg (clamp_min guard)",
        r#"sum(rate(dynamo_frontend_request_duration_seconds_sum{model="$model"}[$__rate_interval])) / clamp_min(sum(rate(dynamo_frontend_request_duration_seconds_count{model="$model"}[$__rate_interval])), 1)"#,
    ),
    p(
        "dynamo.json E2E Request Latency max",
        r#"histogram_quantile(1.0, sum by(le) (rate(dynamo_frontend_request_duration_seconds_bucket{model="$model"}[$__rate_interval])))"#,
    ),
    p(
        "dynamo.json Request Outcome Breakdown (cancelled)",
        r#"sum(rate(dynamo_frontend_requests_total{model="$model", status="error", error_type="cancelled"}[$__rate_interval]))"#,
    ),
    p(
        "dynamo.json Inflight vs Queued Requests",
        r#"sum(dynamo_frontend_active_requests{model="$model"})"#,
    ),
    p(
        "dynamo.json TTFT p50 (postfix by)",
        r#"histogram_quantile(0.50, sum(rate(dynamo_frontend_time_to_first_token_seconds_bucket{model="$model"}[$__rate_interval])) by (le)) * 1000"#,
    ),
    p(
        "dynamo.json ITL p90",
        r#"histogram_quantile(0.90, sum(rate(dynamo_frontend_inter_token_latency_seconds_bucket{model="$model"}[$__rate_interval])) by (le)) * 1000"#,
    ),
    p(
        "dynamo.json ISL Distribution p99",
        r#"histogram_quantile(0.99, sum(rate(dynamo_frontend_input_sequence_tokens_bucket{model="$model"}[$__rate_interval])) by (le))"#,
    ),
    p(
        "dynamo.json Output Size Distribution max (quantile 1)",
        r#"histogram_quantile(1, sum(rate(dynamo_frontend_output_sequence_tokens_bucket{model="$model"}[$__rate_interval])) by (le))"#,
    ),
    p(
        "dynamo.json Cached Tokens avg",
        r#"sum(rate(dynamo_frontend_cached_tokens_sum{model="$model"}[$__rate_interval])) /clamp_min(sum(rate(dynamo_frontend_cached_tokens_count{model="$model"}[$__rate_interval])), 1)"#,
    ),
    p(
        "dynamo.json Per-Worker Active Decode Blocks",
        "dynamo_frontend_worker_active_decode_blocks",
    ),
    p(
        "dynamo.json KV Hit Rate Distribution p90",
        "histogram_quantile(0.90, sum(rate(dynamo_component_router_kv_hit_rate_bucket[$__rate_interval])) by (le))",
    ),
    p(
        "dynamo.json Routing Overhead (total p50)",
        "histogram_quantile(0.50, sum(rate(dynamo_router_overhead_total_ms_bucket[$__rate_interval])) by (le))",
    ),
    p(
        "dynamo.json KV Events Applied Breakdown",
        r#"sum(rate(dynamo_component_kv_cache_events_applied{event_type="stored", status="ok"}[$__rate_interval]))"#,
    ),
    p(
        "dynamo.json Worker Request Breakdown Per Worker",
        r#"sum by (instance) (rate(dynamo_component_requests_total{model="$model"}[$__rate_interval]))"#,
    ),
    p(
        "dynamo.json Worker Request Breakdown (errors)",
        r#"sum by (instance, error_type) (rate(dynamo_component_errors_total{model="$model"}[$__rate_interval]))"#,
    ),
    p(
        "dynamo.json Worker Request Duration p99 per worker",
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(dynamo_component_request_duration_seconds_bucket{model="$model"}[$__rate_interval])))"#,
    ),
    p(
        "dynamo.json Worker Request Duration avg per worker",
        r#"sum by(instance) (rate(dynamo_component_request_duration_seconds_sum{model="$model"}[$__rate_interval])) / clamp_min(sum by(instance) (rate(dynamo_component_request_duration_seconds_count{model="$model"}[$__rate_interval])), 1)"#,
    ),
    p(
        "dynamo.json Component Throughput",
        r#"rate(dynamo_component_response_bytes_total{dynamo_endpoint="generate", model="$model"}[$__rate_interval])"#,
    ),
    // dynamo.json (main): raw ratios, 0/0 of idle endpoints gives NaN.
    p(
        "dynamo.json Frontend Requests / Sec",
        "rate(dynamo_frontend_requests_total[30s])",
    ),
    p(
        "dynamo.json Frontend Avg Time to First Token",
        "1000*(dynamo_frontend_time_to_first_token_seconds_sum/dynamo_frontend_time_to_first_token_seconds_count)",
    ),
    p(
        "dynamo.json Avg Request Duration (NaN for idle endpoints)",
        "dynamo_component_request_duration_seconds_sum / dynamo_component_request_duration_seconds_count",
    ),
    p(
        "dynamo.json Avg Errors / sec",
        r#"rate(dynamo_component_errors_total{dynamo_endpoint="generate"}[1m])"#,
    ),
    // kvbm.json
    p("kvbm.json Host Cache Hit Rate", "kvbm_host_cache_hit_rate"),
    p(
        "kvbm.json Offload Blocks - Device to Host",
        "kvbm_offload_blocks_d2h",
    ),
    // dcgm-metrics.json
    p(
        "dcgm-metrics.json GPU Memory Usage",
        "DCGM_FI_DEV_FB_USED * 1024 * 1024",
    ),
    p(
        "dcgm-metrics.json PCIe Bandwidth (rate of a gauge: resets)",
        "rate(DCGM_FI_PROF_PCIE_RX_BYTES[10s])",
    ),
    p(
        "dcgm-metrics.json Average GPU Utilization",
        "avg(DCGM_FI_DEV_GPU_UTIL)",
    ),
    p(
        "dcgm-metrics.json Max GPU Temperature",
        "max(DCGM_FI_DEV_GPU_TEMP)",
    ),
    // disagg-dashboard.json
    p(
        "disagg-dashboard.json NVLink Bandwidth",
        "(rate(DCGM_FI_PROF_NVLINK_TX_BYTES[1m]) + rate(DCGM_FI_PROF_NVLINK_RX_BYTES[1m])) / 1e9",
    ),
    p(
        "disagg-dashboard.json GPU Memory Used",
        "DCGM_FI_DEV_FB_USED / 1024",
    ),
    Panel {
        source: "disagg-dashboard.json Frontend Queued Requests (no kube-state-metrics: empty)",
        expr: r#"((sum without(stage) (dynamo_frontend_stage_requests{stage=~"preprocess|route|dispatch"}))) * on(pod, namespace) group_left() kube_pod_status_phase{phase="Running"}"#,
        data: false,
    },
    p(
        "disagg-dashboard.json Frontend Queued Requests, left side",
        r#"sum without(stage) (dynamo_frontend_stage_requests{stage=~"preprocess|route|dispatch"})"#,
    ),
    // failover panels and alert rules: fall-backs when the metric does not exist.
    p(
        "dynamo.json@031236a9 Active engines (or vector(0))",
        r#"count(dynamo_component_engine_failover_state{state="active"} == 1) or vector(0)"#,
    ),
    Panel {
        source: "xpu-alert-rules.yml XPUWorkerLivenessLost (absent, and on(); the corpus has the XPU exporter: empty)",
        expr: "absent(xpu_engine_group_compute_engine_util) and on() sum(rate(dynamo_frontend_requests_total[5m])) > 0",
        data: false,
    },
    p(
        "xpu-alert-rules.yml shape: XPUWorkerLivenessLost on a metric the corpus lacks",
        "absent(xpu_engine_group_no_such_metric) and on() sum(rate(dynamo_frontend_requests_total[5m])) > 0",
    ),
    // compass / disagg shapes on the corpus's metrics: per-series quantile, ratio of quantiles.
    p(
        "disagg-dashboard.json shape: histogram_quantile without aggregation",
        "histogram_quantile(0.99, rate(dynamo_component_request_duration_seconds_bucket[5m]))",
    ),
    p(
        "compass shape: ratio of two histogram_quantiles",
        "histogram_quantile(0.99, rate(dynamo_request_plane_queue_seconds_bucket[$__rate_interval])) / histogram_quantile(0.99, rate(dynamo_request_plane_send_seconds_bucket[$__rate_interval]))",
    ),
    p(
        "dynamo-operator.json shape: success ratio by label",
        r#"100 * sum by (model) (rate(dynamo_frontend_requests_total{status="success"}[5m])) / sum by (model) (rate(dynamo_frontend_requests_total[5m]))"#,
    ),
    p(
        "failover shape: time() - gauge",
        "time() - process_start_time_seconds",
    ),
    // Functions the dashboards do not use but users add to them.
    p(
        "added: irate",
        r#"irate(dynamo_frontend_requests_total{model="$model", status="success"}[1m])"#,
    ),
    p(
        "added: topk",
        "topk(3, rate(dynamo_component_response_bytes_total[5m]))",
    ),
    p(
        "added: label_replace",
        r#"label_replace(rate(dynamo_component_requests_total{dynamo_endpoint="generate"}[1m]), "worker", "$1", "instance", "(vllm-worker-[0-9]+):.*")"#,
    ),
    p(
        "added: avg_over_time",
        "avg_over_time(DCGM_FI_DEV_GPU_TEMP[5m])",
    ),
    p(
        "added: increase over 5m",
        "increase(vllm:prompt_tokens_total[5m])",
    ),
    p(
        "added: sort_desc (order compared)",
        "sort_desc(sum by (instance) (rate(dynamo_component_response_bytes_total[5m])))",
    ),
    p("added: count by job", "count by (job) (up)"),
    p(
        "added: quantile and stddev across workers",
        "quantile by (job) (0.9, DCGM_FI_DEV_POWER_USAGE) / stddev by (job) (DCGM_FI_DEV_POWER_USAGE)",
    ),
    p("added: bottomk", "bottomk(2, DCGM_FI_DEV_GPU_TEMP)"),
    p(
        "added: max_over_time, min_over_time",
        "max_over_time(dynamo_frontend_active_requests[2m]) - min_over_time(dynamo_frontend_active_requests[2m])",
    ),
    p(
        "added: quantile_over_time",
        "quantile_over_time(0.95, DCGM_FI_DEV_POWER_USAGE[5m])",
    ),
    p(
        "added: stddev_over_time",
        "stddev_over_time(vllm:kv_cache_usage_perc[5m])",
    ),
    p("added: changes", "changes(DCGM_FI_DEV_GPU_UTIL[3m])"),
    p("added: resets", "resets(DCGM_FI_PROF_PCIE_TX_BYTES[5m])"),
    p("added: delta", "delta(DCGM_FI_DEV_GPU_TEMP[2m])"),
    p(
        "added: idelta",
        "idelta(dynamo_frontend_queued_requests[1m])",
    ),
    p(
        "added: deriv",
        "deriv(etcd_mvcc_db_total_size_in_bytes[5m])",
    ),
    p(
        "added: predict_linear",
        "predict_linear(DCGM_FI_DEV_FB_USED[10m], 3600)",
    ),
    p(
        "added: timestamp",
        "timestamp(dynamo_frontend_inflight_requests)",
    ),
    p(
        "added: count_values",
        "count_values(\"temp\", DCGM_FI_DEV_GPU_TEMP)",
    ),
    p(
        "added: label_join",
        r#"label_join(DCGM_FI_DEV_GPU_UTIL, "where", "/", "Hostname", "gpu")"#,
    ),
    p(
        "added: bool comparison and group by",
        "group by (job) (up) * on(job) group_right count by (job) (scrape_duration_seconds > bool 0.04)",
    ),
    p(
        "added: unless on",
        r#"rate(dynamo_frontend_requests_total[5m]) unless on(endpoint, request_type) rate(dynamo_frontend_requests_total{endpoint="completions", status="error"}[5m])"#,
    ),
    p(
        "added: ignoring, group_left",
        "sum by (endpoint, status) (rate(dynamo_frontend_requests_total[5m])) / ignoring(status) group_left sum by (endpoint) (rate(dynamo_frontend_requests_total[5m]))",
    ),
    p(
        "added: round, clamp, abs, sgn",
        "round(clamp(DCGM_FI_DEV_POWER_USAGE, 100, 600), 0.5) + abs(sgn(DCGM_FI_DEV_GPU_TEMP - 60))",
    ),
    p(
        "added: scalar and vector",
        "vector(scalar(sum(dynamo_frontend_active_requests))) / count(up)",
    ),
    p(
        "added: offset",
        "rate(dynamo_component_requests_total[5m] offset 3m)",
    ),
    p(
        "added: subquery over a gauge",
        "max_over_time(DCGM_FI_DEV_GPU_TEMP[5m:30s])",
    ),
    p(
        "added: absent_over_time of a missing series",
        r#"absent_over_time(dynamo_component_engine_failover_state{state="active"}[5m])"#,
    ),
    p(
        "added: absent keeps equality matchers' labels",
        r#"absent(nope{job="x", instance=~"y.*", model="m"})"#,
    ),
    p(
        "added: raw range vector (instant only; a range query refuses it)",
        "dynamo_frontend_active_requests[1m]",
    ),
    p("added: scalar result", "scalar(sum(up)) * 2"),
    p("added: time()", "time()"),
    p(
        "added: ±Inf and NaN from division",
        "(dynamo_frontend_disconnected_clients - 1) / 0",
    ),
    p(
        "added: count_values formats floats as labels",
        r#"count_values("v", DCGM_FI_DEV_POWER_USAGE) or count_values("v", go_gc_duration_seconds) or count_values("v", DCGM_FI_PROF_NVLINK_TX_BYTES * 1e10)"#,
    ),
    p(
        "added: histogram_quantile outside [0, 1]",
        "histogram_quantile(-0.5, sum by (le) (rate(dynamo_frontend_request_duration_seconds_bucket[5m]))) + histogram_quantile(1.5, sum by (le) (rate(dynamo_frontend_request_duration_seconds_bucket[5m])))",
    ),
    p(
        "added: name regex, !=, !~, empty matcher",
        r#"{__name__=~"DCGM_FI_DEV_(GPU|MEM).*", gpu!="1", Hostname!~"x.*", nope=""}"#,
    ),
    p(
        "added: sum without, stdvar, group",
        "sum without (instance, job) (dynamo_tokio_worker_busy_ratio) + stdvar without (instance, job) (dynamo_tokio_worker_busy_ratio) + group without (instance, job) (dynamo_tokio_worker_busy_ratio)",
    ),
    p(
        "added: %, ^, unary minus, precedence",
        "-DCGM_FI_DEV_GPU_TEMP % 7 + 2 ^ 3 ^ 0.5 - -2 ^ 2",
    ),
    p(
        "added: math functions",
        "ln(DCGM_FI_DEV_POWER_USAGE) + log2(DCGM_FI_DEV_POWER_USAGE) + sqrt(DCGM_FI_DEV_GPU_TEMP) + exp(DCGM_FI_PROF_DRAM_ACTIVE) + ceil(DCGM_FI_DEV_POWER_USAGE) - floor(DCGM_FI_DEV_POWER_USAGE)",
    ),
    // `a atan2 b` keeps `__name__` in 2.42 and drops it from 2.47 on, as the arithmetic
    // operators do (Prometheus commit 531567d "Drop metric name for atan2 binary operator"), so
    // the comparison aggregates the name away.
    p(
        "added: atan2 (name dropped by sum: changed in 2.47)",
        "sum by (gpu) (DCGM_FI_DEV_GPU_TEMP atan2 DCGM_FI_DEV_MEMORY_TEMP)",
    ),
    p(
        "added: date functions",
        "hour(timestamp(up)) * 10000 + minute(timestamp(up)) * 100 + day_of_week(timestamp(up)) + days_in_month(timestamp(up)) + month(timestamp(up)) + year(timestamp(up)) - day_of_month(timestamp(up))",
    ),
    p(
        "added: date functions of the evaluation time",
        "day_of_week() * 1000 + hour() * 100 + minute() + days_in_month() - day_of_month() + month() * year()",
    ),
    p(
        "added: last/sum/count/present_over_time",
        "last_over_time(DCGM_FI_DEV_GPU_TEMP[1m]) + sum_over_time(DCGM_FI_DEV_GPU_TEMP[1m]) / count_over_time(DCGM_FI_DEV_GPU_TEMP[1m]) + present_over_time(DCGM_FI_DEV_GPU_TEMP[1m])",
    ),
    p(
        "added: @ end() and negative offset",
        "max_over_time(DCGM_FI_DEV_GPU_TEMP[10m] @ end()) - DCGM_FI_DEV_GPU_TEMP offset -1m",
    ),
    p(
        "added: label_replace deleting and copying labels",
        r#"label_replace(label_replace(up, "job", "", "job", "dynamo-.*"), "port", "$2", "instance", "(.*):([0-9]+)")"#,
    ),
    p(
        "added: comparison filters and bool",
        "(DCGM_FI_DEV_GPU_TEMP > 50) + (DCGM_FI_DEV_GPU_TEMP >= bool 60) + (DCGM_FI_DEV_GPU_TEMP != bool 70)",
    ),
    // k is below the number of non-NaN values: which of several NaN series a larger k would
    // keep is up to the implementation (input order), not PromQL.
    p(
        "added: topk and bottomk skip NaN",
        "topk(1, dynamo_component_request_duration_seconds_sum / dynamo_component_request_duration_seconds_count) or bottomk(1, dynamo_component_request_duration_seconds_sum / dynamo_component_request_duration_seconds_count)",
    ),
    p(
        "added: sort with NaN (order of values compared)",
        "sort(dynamo_component_request_duration_seconds_sum / dynamo_component_request_duration_seconds_count)",
    ),
    p(
        "added: string literal (a range query refuses it)",
        r#""edgeprom""#,
    ),
    p(
        "added: compound duration as Grafana writes it",
        "rate(dynamo_frontend_requests_total{status=\"success\"}[1m30s])",
    ),
    p(
        "added: case-insensitive and alternation regex matchers",
        r#"dynamo_component_inflight_requests{instance=~"(?i)VLLM-WORKER-00[02].*", dynamo_endpoint=~"gen.*|load_lora", model!~""}"#,
    ),
    p(
        "added: label_replace with a named group",
        r#"label_replace(dynamo_component_total_blocks, "n", "w${num}", "instance", "vllm-worker-0*(?P<num>[0-9]+):.*")"#,
    ),
    p(
        "added: absent of an aggregation, unless on()",
        r#"absent(sum(nope)) + on() (vector(1) unless on() up{job="nope"})"#,
    ),
    p(
        "added: count_values overwriting a label",
        r#"count_values("gpu", DCGM_FI_DEV_ENC_UTIL)"#,
    ),
    p(
        "added: max and min with NaN",
        "max by (instance) (dynamo_component_request_duration_seconds_sum / dynamo_component_request_duration_seconds_count) - min by (instance) (dynamo_component_request_duration_seconds_sum / dynamo_component_request_duration_seconds_count)",
    ),
];

/// Whether `expr` calls `rate`, `increase` or `delta`, whose extrapolation towards a series'
/// start changed in Prometheus 2.51 (`irate`/`idelta` do not extrapolate).
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

/// Whether `expr` names the metric `name` (not as part of a longer name).
fn mentions(expr: &str, name: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.match_indices(name).any(|(i, _)| {
        !expr[..i].chars().next_back().is_some_and(part_of_name)
            && !expr[i + name.len()..]
                .chars()
                .next()
                .is_some_and(part_of_name)
    })
}

/// Seconds of a PromQL duration such as `5m`, `1200s` or `1m30s` (0 if it is not one).
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

/// How far back from the evaluation time `expr` reads through range selectors: the longest range
/// plus the longest offset, in seconds (an over-estimate when they are on different selectors).
fn reach_s(expr: &str) -> i64 {
    let ranges = expr
        .split('[')
        .skip(1)
        .filter_map(|s| s.split([']', ':']).next())
        .map(duration_s)
        .max()
        .unwrap_or(0);
    let offsets = expr
        .split("offset ")
        .skip(1)
        .map(|s| duration_s(s.split([')', ' ', ']']).next().unwrap_or("")))
        .max()
        .unwrap_or(0);
    ranges + offsets
}

/// A request's parameters in order (`match[]` repeats).
type Params = Vec<(&'static str, String)>;

/// One value point: timestamp as JSON gives it, value string.
type Point = (f64, String);

/// A query result reduced to what is compared.
#[derive(Debug)]
enum Outcome {
    Error {
        error_type: String,
    },
    Success {
        result_type: String,
        /// Series as (labels, points), sorted by labels; a scalar or string is one series
        /// without labels.
        series: Vec<(BTreeMap<String, String>, Vec<Point>)>,
        /// For a query that sorts: the values in the server's order. Only the values: the order
        /// of series with equal values (or NaN) is the implementation's.
        order: Option<Vec<String>>,
    },
    /// Lookup endpoints: a list of label names/values, or of label sets.
    Strings(Vec<String>),
    LabelSets(Vec<BTreeMap<String, String>>),
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn point_of(v: &Value) -> Point {
    (
        v[0].as_f64().unwrap_or(f64::NAN),
        v[1].as_str().unwrap_or("<missing>").to_string(),
    )
}

fn fmt_labels(l: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Reduces a query answer. `sorted`: the query sorts, keep the order of its values.
fn outcome(v: &Value, sorted: bool) -> Outcome {
    if v["status"] != "success" {
        return Outcome::Error {
            error_type: v["errorType"].as_str().unwrap_or("<none>").to_string(),
        };
    }
    let data = &v["data"];
    let mut result_type = data["resultType"].as_str().unwrap_or("<none>").to_string();
    let result = &data["result"];
    if matches!(result_type.as_str(), "vector" | "matrix") && !result.is_array() {
        // An empty result is `[]` in Prometheus; `null` would break clients.
        result_type = format!("{result_type} with result {result}");
    }
    let mut series: Vec<(BTreeMap<String, String>, Vec<Point>)> = match result_type.as_str() {
        "vector" | "matrix" => result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let points = if result_type == "vector" {
                            vec![point_of(&s["value"])]
                        } else {
                            s["values"]
                                .as_array()
                                .map(|ps| ps.iter().map(point_of).collect())
                                .unwrap_or_default()
                        };
                        (labels_of(&s["metric"]), points)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![(BTreeMap::new(), vec![point_of(result)])],
    };
    let order = sorted.then(|| {
        series
            .iter()
            .filter_map(|s| s.1.first().map(|p| p.1.clone()))
            .collect()
    });
    series.sort_by(|a, b| a.0.cmp(&b.0));
    Outcome::Success {
        result_type,
        series,
        order,
    }
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    // Rust reads Prometheus's "NaN", "+Inf", "-Inf" as well as plain decimals.
    let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else {
        return false;
    };
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    if x == y {
        return true;
    }
    x.is_finite() && y.is_finite() && (x - y).abs() <= REL_TOL * x.abs().max(y.abs())
}

/// Removes the points whose timestamp `skip` names (and series left without points); returns how
/// many it removed.
fn drop_points(o: &mut Outcome, skip: &dyn Fn(f64) -> bool) -> usize {
    let Outcome::Success { series, .. } = o else {
        return 0;
    };
    let mut dropped = 0;
    for (_, points) in series.iter_mut() {
        let before = points.len();
        points.retain(|p| !skip(p.0));
        dropped += before - points.len();
    }
    series.retain(|s| !s.1.is_empty());
    dropped
}

/// Values that match only within the tolerance, not as the same decimal string: how many, and
/// the largest relative difference among them. Reported, so that the tolerance stays honest.
fn inexact(e: &Outcome, p: &Outcome) -> (usize, f64) {
    let (Outcome::Success { series: sa, .. }, Outcome::Success { series: sb, .. }) = (e, p) else {
        return (0, 0.0);
    };
    let mut n = 0;
    let mut worst = 0.0f64;
    for (l, pa) in sa {
        let Some((_, pb)) = sb.iter().find(|s| &s.0 == l) else {
            continue;
        };
        for (x, y) in pa.iter().zip(pb) {
            if x.1 != y.1 && same_value(&x.1, &y.1) {
                n += 1;
                if let (Ok(a), Ok(b)) = (x.1.parse::<f64>(), y.1.parse::<f64>()) {
                    worst = worst.max((a - b).abs() / a.abs().max(b.abs()));
                }
            }
        }
    }
    (n, worst)
}

/// One difference, readable on its own.
struct Diff {
    what: String,
    series: String,
    field: String,
    edgeprom: String,
    prometheus: String,
}

/// Compares edgeprom's outcome `e` with Prometheus's `p`; pushes every difference. Returns the
/// number of series and points compared.
fn compare(what: &str, e: &Outcome, p: &Outcome, diffs: &mut Vec<Diff>) -> (usize, usize) {
    let mut diff = |series: &str, field: &str, ev: String, pv: String| {
        diffs.push(Diff {
            what: what.to_string(),
            series: series.to_string(),
            field: field.to_string(),
            edgeprom: ev,
            prometheus: pv,
        });
    };
    match (e, p) {
        (Outcome::Error { error_type: a }, Outcome::Error { error_type: b }) => {
            if a != b {
                diff("-", "errorType", a.clone(), b.clone());
            }
            (0, 0)
        }
        (
            Outcome::Success {
                result_type: ta,
                series: sa,
                order: oa,
            },
            Outcome::Success {
                result_type: tb,
                series: sb,
                order: ob,
            },
        ) => {
            if ta != tb {
                diff("-", "resultType", ta.clone(), tb.clone());
                return (0, 0);
            }
            let mut points = 0;
            // Series only one side has.
            for (l, _) in sa {
                if !sb.iter().any(|s| &s.0 == l) {
                    diff(&fmt_labels(l), "series", "present".into(), "absent".into());
                }
            }
            for (l, _) in sb {
                if !sa.iter().any(|s| &s.0 == l) {
                    diff(&fmt_labels(l), "series", "absent".into(), "present".into());
                }
            }
            if let (Some(oa), Some(ob)) = (oa, ob)
                && let Some(i) = (0..oa.len().min(ob.len())).find(|&i| !same_value(&oa[i], &ob[i]))
            {
                diff(
                    &format!("#{i}"),
                    "sorted value",
                    oa[i].clone(),
                    ob[i].clone(),
                );
            }
            for (l, pa) in sa {
                let Some((_, pb)) = sb.iter().find(|s| &s.0 == l) else {
                    continue;
                };
                let name = fmt_labels(l);
                if pa.len() != pb.len() {
                    diff(
                        &name,
                        "number of points",
                        pa.len().to_string(),
                        pb.len().to_string(),
                    );
                }
                for (x, y) in pa.iter().zip(pb) {
                    points += 1;
                    if x.0 != y.0 {
                        diff(&name, "timestamp", x.0.to_string(), y.0.to_string());
                        break;
                    }
                    if !same_value(&x.1, &y.1) {
                        diff(
                            &name,
                            &format!("value at {}", x.0),
                            x.1.clone(),
                            y.1.clone(),
                        );
                    }
                }
            }
            (sa.len(), points)
        }
        (Outcome::Strings(a), Outcome::Strings(b)) => {
            for x in a.iter().filter(|x| !b.contains(x)) {
                diff("-", "value", x.clone(), "absent".into());
            }
            for x in b.iter().filter(|x| !a.contains(x)) {
                diff("-", "value", "absent".into(), x.clone());
            }
            if a.len() == b.len() && a != b {
                diff("-", "order", format!("{a:?}"), format!("{b:?}"));
            }
            (a.len(), 0)
        }
        (Outcome::LabelSets(a), Outcome::LabelSets(b)) => {
            for x in a.iter().filter(|x| !b.contains(x)) {
                diff(&fmt_labels(x), "series", "present".into(), "absent".into());
            }
            for x in b.iter().filter(|x| !a.contains(x)) {
                diff(&fmt_labels(x), "series", "absent".into(), "present".into());
            }
            (a.len(), 0)
        }
        (a, b) => {
            let short = |o: &Outcome| match o {
                Outcome::Error { error_type } => format!("error {error_type}"),
                Outcome::Success { result_type, .. } => format!("success {result_type}"),
                Outcome::Strings(_) | Outcome::LabelSets(_) => "list".to_string(),
            };
            diff("-", "status", short(a), short(b));
            (0, 0)
        }
    }
}

/// POSTs a form as Grafana does and returns the JSON answer (any HTTP status: errors are JSON too).
async fn post(client: &reqwest::Client, base: &str, path: &str, form: &[(&str, String)]) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{base}{path}: not JSON ({e}): {text}"))
}

async fn get(client: &reqwest::Client, base: &str, path: &str, query: &[(&str, String)]) -> Value {
    let r = client
        .get(format!("{base}{path}"))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{base}{path}: not JSON ({e}): {text}"))
}

/// Reduces a lookup answer: a sorted list of strings (`labels`, `label/…/values`) or of label sets.
fn lookup_outcome(v: &Value) -> Outcome {
    if v["status"] != "success" {
        return outcome(v, false);
    }
    let Some(data) = v["data"].as_array() else {
        // Prometheus answers `[]` for nothing found; `null` or an object would break clients.
        return Outcome::Strings(vec![format!("<data is not a list: {}>", v["data"])]);
    };
    if data.iter().all(Value::is_string) {
        // Prometheus sorts these lists; the order is compared too.
        Outcome::Strings(
            data.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect(),
        )
    } else {
        let mut sets: Vec<_> = data.iter().map(labels_of).collect();
        sets.sort();
        Outcome::LabelSets(sets)
    }
}

/// What one compared request looked like in the table.
struct Row {
    what: String,
    series: usize,
    points: usize,
    diffs: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_match_prometheus_2() {
    let (Some(prometheus), Some(promtool)) = (on_path("prometheus"), on_path("promtool")) else {
        let msg = "prometheus_compare: `prometheus` and `promtool` are not on PATH; install \
                   Prometheus 2.x (Debian: apt-get install prometheus) to compare answers";
        if std::env::var("EDGEPROM_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1") {
            panic!("{msg} (EDGEPROM_REQUIRE_PROMETHEUS=1 makes this a failure)");
        }
        // Straight to stderr: the test harness captures `eprintln!` of passing tests, and a
        // skip should be seen.
        let _ = writeln!(std::io::stderr(), "SKIPPED {msg}");
        return;
    };
    let started = Instant::now();
    let version = Command::new(&prometheus)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    println!("comparing with {version}");

    // The corpus starts on a multiple of 30 s (every job's grid) and ends at most 2 h before now.
    let dir = temp_dir("promcmp");
    let boundary = (now_s() - 60 - (DURATION_S - BLOCK_SPLIT_S)).div_euclid(BLOCK_S) * BLOCK_S;
    let start_s = boundary - BLOCK_SPLIT_S;
    let end_s = start_s + DURATION_S;
    let file = dir.join("corpus.om");
    let mut corpus = Corpus::new(Config {
        workers: WORKERS,
        duration_s: DURATION_S,
        seed: 7,
        start_s,
    });
    // One backend is unreachable for 7 minutes, longer than the lookback: its series vanish from
    // instant queries, and windows around the gap see few or no samples.
    let (gap_from, gap_to) = (start_s + GAP.0, start_s + GAP.1);
    let mut out = Gap {
        out: std::io::BufWriter::new(std::fs::File::create(&file).expect("create corpus")),
        pending: Vec::new(),
        instance: GAP_INSTANCE,
        from: gap_from,
        to: gap_to,
        dropped: 0,
    };
    let written = corpus.write(&mut out).expect("write corpus");
    out.flush().expect("write corpus");
    let samples = written - out.dropped;
    drop(out);
    // The metric names the gapped target exposes: its series restart at the end of the gap.
    let gapped: BTreeSet<&str> = corpus
        .series_texts()
        .filter(|(i, _)| GAP_INSTANCE.contains(&format!("\"{}\"", corpus.targets()[*i].instance)))
        .filter_map(|(_, text)| text.split('{').next())
        .collect();
    assert!(
        gapped.contains("dynamo_component_requests_total"),
        "{gapped:?}"
    );
    // Prometheus 3 (and edgeprom) normalise a classic histogram's `le` on ingestion, 2.x keeps
    // it as written: the comparison needs the generator to write the normalised form.
    let mut buckets = 0;
    for (_, text) in corpus.series_texts() {
        let Some(le) = text
            .split_once("_bucket{")
            .and_then(|(_, rest)| rest.split_once("le=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(v, _)| v)
        else {
            continue;
        };
        let canonical = le.parse::<f64>().map(canonical_le);
        assert!(
            canonical.as_deref() == Ok(le),
            "the generator writes le=\"{le}\" in {text}; Prometheus 2 would keep it and \
             edgeprom normalise it like Prometheus 3 ({canonical:?}): write it normalised"
        );
        buckets += 1;
    }
    assert!(
        buckets > 1000,
        "only {buckets} histogram buckets in the corpus"
    );
    println!(
        "corpus: {} series, {samples} samples, {}..{} ({:.1} s)",
        corpus.stats().series,
        start_s,
        end_s,
        started.elapsed().as_secs_f64()
    );

    // Load both stores (in parallel: they are independent processes).
    let ep_data = dir.join("data");
    let prom_data = dir.join("prometheus-data");
    let import = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .args(["import", "openmetrics"])
        .arg(&file)
        .arg(format!("--storage.tsdb.path={}", ep_data.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run edgeprom import");
    let backfill = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&prom_data)
        .output();
    // Waited for before any assertion, so that no import outlives the test.
    let import = import.wait_with_output().expect("edgeprom import");
    let backfill = backfill.expect("run promtool");
    assert!(
        backfill.status.success(),
        "promtool failed: {}{}",
        String::from_utf8_lossy(&backfill.stdout),
        String::from_utf8_lossy(&backfill.stderr)
    );
    assert!(
        import.status.success(),
        "edgeprom import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let blocks = |d: &Path| {
        std::fs::read_dir(d)
            .map(|es| {
                es.filter_map(Result::ok)
                    .filter(|e| e.path().join("meta.json").is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    println!(
        "loaded: {} edgeprom blocks, {} Prometheus blocks ({:.1} s)",
        blocks(&ep_data),
        blocks(&prom_data),
        started.elapsed().as_secs_f64()
    );

    let config = dir.join("edgeprom.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("write config");
    let (ep, prom) = tokio::join!(
        start(&dir, &config, &["--storage.tsdb.retention.time=10y"]),
        start_prometheus(
            &prometheus,
            &dir,
            &prom_data,
            free_port(),
            // Time retention counts from the newest block; 10 years keeps every imported block.
            &["--storage.tsdb.retention.time=10y"],
        )
    );
    println!("both ready ({:.1} s)", started.elapsed().as_secs_f64());

    let client = reqwest::Client::builder()
        .user_agent("Grafana/12.0.0")
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut rows = Vec::new();
    let mut diffs = Vec::new();

    // Grafana's variable query label_values(dynamo_frontend_requests_total, model), resolved on
    // the reference server, then compared like every other lookup below.
    let range = [
        ("start", (start_s - 60).to_string()),
        ("end", (end_s + 60).to_string()),
    ];
    let models = get(
        &client,
        &prom.base,
        "/api/v1/label/model/values",
        &[
            ("match[]", "dynamo_frontend_requests_total".to_string()),
            range[0].clone(),
            range[1].clone(),
        ],
    )
    .await;
    let model = models["data"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no model label values: {models}"))
        .to_string();

    // Lookups: Grafana's variable queries and metric browser.
    let with_range = |mut q: Vec<(&'static str, String)>| {
        q.extend(range.iter().cloned());
        q
    };
    let lookups: Vec<(&str, &str, Params)> = vec![
        ("labels", "/api/v1/labels", vec![]),
        ("labels start/end", "/api/v1/labels", with_range(vec![])),
        (
            "labels match[]",
            "/api/v1/labels",
            with_range(vec![("match[]", "dynamo_frontend_requests_total".into())]),
        ),
        ("metric names", "/api/v1/label/__name__/values", vec![]),
        (
            "metric names match[] job",
            "/api/v1/label/__name__/values",
            with_range(vec![("match[]", r#"{job="dynamo-backend"}"#.into())]),
        ),
        (
            "label_values(dynamo_frontend_requests_total, model)",
            "/api/v1/label/model/values",
            with_range(vec![("match[]", "dynamo_frontend_requests_total".into())]),
        ),
        (
            "label_values(up, instance)",
            "/api/v1/label/instance/values",
            with_range(vec![("match[]", "up".into())]),
        ),
        (
            "label_values(le) of a histogram",
            "/api/v1/label/le/values",
            with_range(vec![(
                "match[]",
                "dynamo_frontend_time_to_first_token_seconds_bucket".into(),
            )]),
        ),
        (
            "series match[] with model",
            "/api/v1/series",
            with_range(vec![(
                "match[]",
                format!(r#"dynamo_frontend_requests_total{{model="{model}"}}"#),
            )]),
        ),
        (
            "series two match[]",
            "/api/v1/series",
            with_range(vec![
                ("match[]", "up".into()),
                ("match[]", "DCGM_FI_DEV_GPU_UTIL".into()),
            ]),
        ),
        (
            "series regex on __name__",
            "/api/v1/series",
            vec![("match[]", r#"{__name__=~"kvbm_.*"}"#.into())],
        ),
        ("series without match[] (error)", "/api/v1/series", vec![]),
        (
            "series after the data",
            "/api/v1/series",
            vec![
                ("match[]", "up".into()),
                ("start", (end_s + 3600).to_string()),
                ("end", (end_s + 7200).to_string()),
            ],
        ),
        (
            "labels after the data",
            "/api/v1/labels",
            vec![
                ("start", (end_s + 3600).to_string()),
                ("end", (end_s + 7200).to_string()),
            ],
        ),
        (
            "label values after the data",
            "/api/v1/label/job/values",
            vec![
                ("start", (end_s + 3600).to_string()),
                ("end", (end_s + 7200).to_string()),
            ],
        ),
        (
            "label values with RFC 3339 times and two match[]",
            "/api/v1/label/job/values",
            vec![
                ("match[]", "kvbm_matched_tokens".into()),
                ("match[]", r#"{__name__=~"etcd_.+", job=~"etcd.*"}"#.into()),
                ("start", "2000-01-01T00:00:00Z".into()),
                ("end", "2100-01-01T00:00:00.5Z".into()),
            ],
        ),
        (
            "label values of a label no series has",
            "/api/v1/label/nope/values",
            vec![],
        ),
    ];
    // Grafana sends `labels` and `series` as POST forms, label values as GET.
    let posted = lookups
        .iter()
        .filter(|l| l.1 == "/api/v1/labels" || l.1 == "/api/v1/series")
        .map(|(what, path, query)| (format!("{what} (POST)"), *path, query.clone(), true))
        .collect::<Vec<_>>();
    let lookups = lookups
        .iter()
        .map(|(what, path, query)| (what.to_string(), *path, query.clone(), false))
        .chain(posted);
    for (what, path, query, as_post) in lookups {
        let (e, p) = if as_post {
            tokio::join!(
                post(&client, &ep.base, path, &query),
                post(&client, &prom.base, path, &query)
            )
        } else {
            tokio::join!(
                get(&client, &ep.base, path, &query),
                get(&client, &prom.base, path, &query)
            )
        };
        let what = format!("lookup {what}");
        let before = diffs.len();
        let (series, points) = compare(&what, &lookup_outcome(&e), &lookup_outcome(&p), &mut diffs);
        rows.push(Row {
            what,
            series,
            points,
            diffs: diffs.len() - before,
        });
    }

    // Panels: instant at four times (just after the first sample, middle, late, after the last
    // sample where only the lookback keeps series), and the dashboard's range query with a 15 s
    // step; all half a second off the sample grid.
    let instants = [
        ("instant start+20.5s", start_s as f64 + 20.5),
        ("instant middle", start_s as f64 + 777.5),
        ("instant end-13.5s", end_s as f64 - 13.5),
        ("instant end+90.5s", end_s as f64 + 90.5),
    ];
    // The range covers the corpus's start (windows reaching before the first sample) and runs
    // past the lookback after its end (series disappear).
    // Its end is not on the step grid: the last step is the last one before it.
    let (range_start, range_end) = (start_s as f64 - 59.5, end_s as f64 + 367.0);
    let (mut skipped, mut skipped_points) = (0, 0);
    let (mut inexact_values, mut worst_rel) = (0, 0.0f64);
    // The one float semantic that changed between 2.42 and 3.x for these panels: when a
    // `rate`/`increase`/`delta` window starts more than 1.1 sample intervals before a counter's
    // first sample, 2.42 extrapolates towards the counter's zero point if that is nearer than 1.1
    // intervals, while 2.51+ (and edgeprom) extrapolate at most half an interval (Prometheus
    // #13725, CHANGELOG 2.51.0 "Constrain extrapolation in rate() to half of sample interval").
    // Series (re)start only at the corpus start and at the end of the gap, so exactly the
    // evaluations whose windows hold one of those are left out.
    let left_out = |expr: &str, t: f64| {
        if !extrapolates(expr) {
            return false;
        }
        let reach = reach_s(expr) as f64;
        let gap_restart = gapped.iter().any(|name| mentions(expr, name));
        [Some(start_s), gap_restart.then_some(gap_to)]
            .into_iter()
            .flatten()
            .any(|s| t - reach < s as f64 && s as f64 <= t)
    };
    for panel in PANELS {
        // Grafana's `$__rate_interval` is max(step + scrape interval, 4 × scrape interval) with
        // its default 15 s scrape interval: 60 s for instant queries and a 15 s step, 75 s for a
        // 60 s step.
        let substitute = |rate_interval: &str| {
            panel
                .expr
                .replace("$__rate_interval", rate_interval)
                .replace("$__range", "1200s")
                .replace("$model", &model)
        };
        let expr = substitute("60s");
        let sorted = expr.contains("sort");
        // (name, path, form, expression) of each request.
        let mut requests: Vec<(String, &str, Params, String)> = Vec::new();
        for (kind, t) in instants {
            if left_out(&expr, t) {
                skipped += 1;
                continue;
            }
            requests.push((
                kind.to_string(),
                "/api/v1/query",
                vec![("query", expr.clone()), ("time", t.to_string())],
                expr.clone(),
            ));
        }
        // Same for the ranges: those steps' points are dropped from both answers.
        for (step, rate_interval) in [(15, "60s"), (60, "75s")] {
            let expr = substitute(rate_interval);
            requests.push((
                format!("range step {step}s"),
                "/api/v1/query_range",
                vec![
                    ("query", expr.clone()),
                    ("start", range_start.to_string()),
                    ("end", range_end.to_string()),
                    ("step", step.to_string()),
                ],
                expr,
            ));
        }
        let mut any_data = false;
        for (kind, path, form, expr) in requests {
            let (e, p) = tokio::join!(
                post(&client, &ep.base, path, &form),
                post(&client, &prom.base, path, &form)
            );
            let what = format!("{} [{kind}]", panel.source);
            let before = diffs.len();
            // A range query's matrix is sorted by labels whatever the expression.
            let keep_order = sorted && path == "/api/v1/query";
            let (mut eo, mut po) = (outcome(&e, keep_order), outcome(&p, keep_order));
            if path == "/api/v1/query_range" {
                let skip = |t: f64| left_out(&expr, t);
                skipped_points += drop_points(&mut eo, &skip);
                drop_points(&mut po, &skip);
            }
            let (series, points) = compare(&what, &eo, &po, &mut diffs);
            let (n, worst) = inexact(&eo, &po);
            inexact_values += n;
            worst_rel = worst_rel.max(worst);
            any_data |= series > 0;
            rows.push(Row {
                what,
                series,
                points,
                diffs: diffs.len() - before,
            });
        }
        if panel.data && !any_data {
            diffs.push(Diff {
                what: panel.source.to_string(),
                series: "-".into(),
                field: "data".into(),
                edgeprom: "no series at any time".into(),
                prometheus: "(the corpus should give some)".into(),
            });
        }
    }

    // Error answers Grafana shows (query syntax, limits, bad parameters), compared by `errorType`.
    let errors: Vec<(&str, &str, Params)> = vec![
        (
            "error: syntax",
            "/api/v1/query",
            vec![("query", "sum(rate(up[5m])".into())],
        ),
        (
            "error: too many points",
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", range_start.to_string()),
                ("end", range_end.to_string()),
                ("step", "0.05".into()),
            ],
        ),
        (
            "error: range query of a range vector",
            "/api/v1/query_range",
            vec![
                ("query", "up[1m]".into()),
                ("start", range_start.to_string()),
                ("end", range_end.to_string()),
                ("step", "15s".into()),
            ],
        ),
        (
            "error: end before start",
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", range_end.to_string()),
                ("end", range_start.to_string()),
                ("step", "15".into()),
            ],
        ),
        (
            "error: same label set twice after dropping the name",
            "/api/v1/query",
            vec![
                (
                    "query",
                    r#"rate({__name__=~"dynamo_component_request(s|_bytes)_total"}[5m])"#.into(),
                ),
                ("time", (end_s as f64 - 13.5).to_string()),
            ],
        ),
        (
            "error: many-to-one without group_left",
            "/api/v1/query",
            vec![
                (
                    "query",
                    "dynamo_frontend_requests_total * on(model) dynamo_frontend_active_requests"
                        .into(),
                ),
                ("time", (end_s as f64 - 13.5).to_string()),
            ],
        ),
        (
            "error: unknown function",
            "/api/v1/query",
            vec![("query", "holt_winters_nope(up[5m], 0.5, 0.5)".into())],
        ),
        (
            "error: empty query",
            "/api/v1/query",
            vec![("query", String::new())],
        ),
        (
            "error: bad time",
            "/api/v1/query",
            vec![("query", "up".into()), ("time", "yesterday".into())],
        ),
        (
            "error: range without step",
            "/api/v1/query_range",
            vec![
                ("query", "up".into()),
                ("start", range_start.to_string()),
                ("end", range_end.to_string()),
            ],
        ),
        (
            "error: bad match[] in labels",
            "/api/v1/labels",
            vec![("match[]", "up{".into())],
        ),
        (
            "error: bad match[] in label values",
            "/api/v1/label/__name__/values",
            vec![("match[]", "{job=~\"(\"}".into())],
        ),
    ];
    for (what, path, form) in &errors {
        // Label values are GET only, in Prometheus as in Grafana.
        let (e, p) = if path.starts_with("/api/v1/label/") {
            tokio::join!(
                get(&client, &ep.base, path, form),
                get(&client, &prom.base, path, form)
            )
        } else {
            tokio::join!(
                post(&client, &ep.base, path, form),
                post(&client, &prom.base, path, form)
            )
        };
        let before = diffs.len();
        let eo = outcome(&e, false);
        let po = outcome(&p, false);
        assert!(matches!(po, Outcome::Error { .. }), "{what}: {p}");
        let (series, points) = compare(what, &eo, &po, &mut diffs);
        rows.push(Row {
            what: (*what).to_string(),
            series,
            points,
            diffs: diffs.len() - before,
        });
    }

    // The table, then the verdict.
    let mut table = String::new();
    let _ = writeln!(table, "| request | series | points | outcome |");
    let _ = writeln!(table, "|---|---:|---:|---|");
    for r in &rows {
        let outcome = if r.diffs == 0 {
            "same".to_string()
        } else {
            format!("{} differences", r.diffs)
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} |",
            r.what, r.series, r.points, outcome
        );
    }
    println!("{table}");
    let total_points: usize = rows.iter().map(|r| r.points).sum();
    let differing = rows.iter().filter(|r| r.diffs > 0).count();
    // The summary goes straight to stderr so that it shows in every `cargo test` run (the
    // harness captures `println!` of passing tests; `--nocapture` shows the table above).
    let _ = writeln!(
        std::io::stderr(),
        "prometheus_compare: {} ({}): {} requests ({} panel queries), {total_points} points, \
         {differing} requests differ, {inexact_values} values equal within the tolerance only \
         (largest relative difference {worst_rel:.1e}); left out (windows holding a series start, Prometheus \
         #13725): {skipped} instant queries, {skipped_points} range points; {:.1} s",
        version.trim(),
        prometheus.display(),
        rows.len(),
        PANELS.len(),
        started.elapsed().as_secs_f64()
    );
    if !diffs.is_empty() {
        let mut report = String::new();
        for d in diffs.iter().take(60) {
            let _ = writeln!(
                report,
                "{}\n    series {}\n    field  {}\n    edgeprom   {}\n    prometheus {}",
                d.what, d.series, d.field, d.edgeprom, d.prometheus
            );
        }
        panic!(
            "{} differences from Prometheus (first 60):\n{report}\nedgeprom log: {}\nprometheus log: {}",
            diffs.len(),
            ep.dir.join("edgeprom.log").display(),
            prom.log.display()
        );
    }
    drop((ep, prom));
    // The corpus is large (≈ 160 MB); a failing run keeps it for a look, a passing one does not.
    let _ = std::fs::remove_dir_all(&dir);
}

/// The comparison itself must be able to fail: each kind of difference is reported.
#[test]
fn comparison_reports_each_kind_of_difference() {
    let answer = |series: &str| -> Outcome {
        let v: Value = serde_json::from_str(&format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{series}]}}}}"#
        ))
        .expect("json");
        outcome(&v, false)
    };
    let base = r#"{"metric":{"a":"1"},"values":[[10.5,"1"],[25.5,"NaN"],[40.5,"+Inf"]]}"#;
    let differs = |other: &str| {
        let mut diffs = Vec::new();
        compare("t", &answer(base), &answer(other), &mut diffs);
        diffs.into_iter().map(|d| d.field).collect::<Vec<_>>()
    };
    // Identical, and within the tolerance.
    assert!(differs(base).is_empty());
    assert!(
        differs(
            r#"{"metric":{"a":"1"},"values":[[10.5,"1.0000000000001"],[25.5,"NaN"],[40.5,"+Inf"]]}"#
        )
        .is_empty()
    );
    // A value beyond the tolerance, NaN against a number, +Inf against -Inf.
    assert_eq!(
        differs(r#"{"metric":{"a":"1"},"values":[[10.5,"1.000001"],[25.5,"0"],[40.5,"-Inf"]]}"#),
        ["value at 10.5", "value at 25.5", "value at 40.5"]
    );
    // A timestamp, a missing point, other labels, an extra series.
    assert_eq!(
        differs(r#"{"metric":{"a":"1"},"values":[[10,"1"],[25.5,"NaN"],[40.5,"+Inf"]]}"#),
        ["timestamp"]
    );
    assert_eq!(
        differs(r#"{"metric":{"a":"1"},"values":[[10.5,"1"],[25.5,"NaN"]]}"#),
        ["number of points"]
    );
    assert_eq!(
        differs(r#"{"metric":{"a":"2"},"values":[[10.5,"1"],[25.5,"NaN"],[40.5,"+Inf"]]}"#),
        ["series", "series"]
    );
    let extra = format!(r#"{base},{{"metric":{{"b":"1"}},"values":[[10.5,"1"]]}}"#);
    assert_eq!(differs(&extra), ["series"]);
    // The order of values of a sorting query, not of the labels of equal values.
    let sorted = |series: &str| -> Outcome {
        let v: Value = serde_json::from_str(&format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{series}]}}}}"#
        ))
        .expect("json");
        outcome(&v, true)
    };
    let (a, b, c) = (
        r#"{"metric":{"a":"1"},"value":[1.5,"1"]}"#,
        r#"{"metric":{"a":"2"},"value":[1.5,"1"]}"#,
        r#"{"metric":{"a":"3"},"value":[1.5,"2"]}"#,
    );
    let mut diffs = Vec::new();
    compare(
        "t",
        &sorted(&format!("{a},{b},{c}")),
        &sorted(&format!("{b},{a},{c}")),
        &mut diffs,
    );
    assert!(diffs.is_empty());
    compare(
        "t",
        &sorted(&format!("{a},{b},{c}")),
        &sorted(&format!("{c},{a},{b}")),
        &mut diffs,
    );
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].field, "sorted value");
    // Status and error type.
    let error: Value =
        serde_json::from_str(r#"{"status":"error","errorType":"bad_data","error":"x"}"#)
            .expect("json");
    let execution: Value =
        serde_json::from_str(r#"{"status":"error","errorType":"execution","error":"x"}"#)
            .expect("json");
    let mut diffs = Vec::new();
    compare("t", &answer(base), &outcome(&error, false), &mut diffs);
    compare(
        "t",
        &outcome(&error, false),
        &outcome(&execution, false),
        &mut diffs,
    );
    let fields: Vec<_> = diffs.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["status", "errorType"]);
}

#[test]
fn windows_and_extrapolation_are_read_from_the_expression() {
    assert!(extrapolates("sum(rate(x[5m]))"));
    assert!(extrapolates("increase(x[1200s]) / 2"));
    assert!(!extrapolates("irate(x[1m]) + idelta(y[1m])"));
    assert!(!extrapolates("avg_over_time(x[5m])"));
    assert_eq!(reach_s("rate(x[5m]) / rate(y[60s])"), 300);
    assert_eq!(reach_s("rate(x[1m30s] offset 3m)"), 270);
    assert_eq!(reach_s("max_over_time(x[5m:30s])"), 300);
    assert_eq!(reach_s("up"), 0);
    assert!(mentions("sum(rate(a_total[5m]))", "a_total"));
    assert!(!mentions("sum(rate(b_a_total[5m]))", "a_total"));
    assert!(!mentions("rate(a_total_x[5m])", "a_total"));
}
