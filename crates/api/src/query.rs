//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/query_exemplars`, `/api/v1/format_query`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use edgeprom_promql::{Engine, EngineOptions, QueryResult, Value};
use edgeprom_scrape::exemplars::SeriesExemplars;
use edgeprom_storage::index::{Matcher, MatcherError};
use promql_parser::parser::Expr;

use crate::params::{MAX_TIME, MIN_TIME};
use crate::response::{ErrorType, format_value, write_labels, write_point, write_timestamp};
use crate::series::selector_sets;
use crate::{Api, ApiError, ApiResult, Params, Success, now_ms};

/// Prometheus refuses range queries with more points per series than this.
const MAX_POINTS: i64 = 11_000;

/// `GET|POST /api/v1/query`: an instant query at `time` (default now).
pub(crate) async fn instant(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let ts = p.time("time", now_ms())?;
    let query = required_query(&p)?;
    let engine = engine(&api, &p)?;
    let timeout = engine.options().timeout;
    let result = run(&api, timeout, move |storage| {
        engine.instant_query(storage, &query, ts)
    })
    .await?;
    Ok(encode(result))
}

/// `GET|POST /api/v1/query_range`: `query` at every `step` from `start` to `end`.
pub(crate) async fn range(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let start = p
        .get("start")
        .ok_or_else(|| ApiError::bad_param("start", "cannot parse \"\" to a valid timestamp"))
        .and_then(|_| p.time("start", 0))?;
    let end = p
        .get("end")
        .ok_or_else(|| ApiError::bad_param("end", "cannot parse \"\" to a valid timestamp"))
        .and_then(|_| p.time("end", 0))?;
    if end < start {
        return Err(ApiError::bad_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = p
        .get("step")
        .ok_or_else(|| ApiError::bad_param("step", "cannot parse \"\" to a valid duration"))
        .and_then(|_| p.duration("step"))?
        .unwrap_or(0);
    if step <= 0 {
        return Err(ApiError::bad_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Prometheus divides the range by the step in whole units and refuses beyond 11,000. Both
    // times may be near ±9e18 ms, so the difference is taken in i128.
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_POINTS) {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let query = required_query(&p)?;
    let engine = engine(&api, &p)?;
    let timeout = engine.options().timeout;
    let result = run(&api, timeout, move |storage| {
        engine.range_query(storage, &query, start, end, step)
    })
    .await?;
    Ok(encode(result))
}

/// `GET|POST /api/v1/query_exemplars`: the stored exemplars of the series every selector of
/// `query` selects, within `start`..`end` (any range; the whole store by default), checked in
/// Prometheus's order. A query without selectors answers `null`, as Prometheus's does; without
/// exemplar storage (`--enable-feature=exemplar-storage`) the list is empty.
pub(crate) async fn exemplars(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let start = p.time("start", MIN_TIME)?;
    let end = p.time("end", MAX_TIME)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let expr = crate::parse_expr(&api, p.get("query").unwrap_or("")).map_err(ApiError::bad_data)?;
    let mut sets = Vec::new();
    selectors(&expr, &mut sets).map_err(|e| ApiError::bad_data(e.to_string()))?;
    if sets.is_empty() {
        return Ok(Success::raw("null".into()));
    }
    let Some(store) = api.exemplars.clone() else {
        return Ok(Success::raw("[]".into()));
    };
    let found = tokio::task::spawn_blocking(move || {
        store.select(start, end, |labels| {
            sets.iter().any(|set| {
                set.iter()
                    .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
            })
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Success::raw(encode_exemplars(&found)))
}

/// Every vector selector's matcher sets in `expr` (Prometheus's `ExtractSelectors`), those
/// under range selectors and subqueries included.
fn selectors(expr: &Expr, out: &mut Vec<Vec<Matcher>>) -> Result<(), MatcherError> {
    match expr {
        Expr::VectorSelector(vs) => out.extend(selector_sets(vs)?),
        Expr::MatrixSelector(ms) => out.extend(selector_sets(&ms.vs)?),
        Expr::Aggregate(a) => {
            selectors(&a.expr, out)?;
            if let Some(param) = &a.param {
                selectors(param, out)?;
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out)?,
        Expr::Binary(b) => {
            selectors(&b.lhs, out)?;
            selectors(&b.rhs, out)?;
        }
        Expr::Paren(p) => selectors(&p.expr, out)?,
        Expr::Subquery(s) => selectors(&s.expr, out)?,
        Expr::Call(c) => {
            for arg in &c.args.args {
                selectors(arg, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
    Ok(())
}

/// Prometheus's `[{"seriesLabels":{…},"exemplars":[{"labels":{…},"value":"…","timestamp":…}]}]`.
fn encode_exemplars(found: &[SeriesExemplars]) -> String {
    let mut out = String::from("[");
    for (i, s) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"seriesLabels\":");
        write_labels(&mut out, &s.series);
        out.push_str(",\"exemplars\":[");
        for (j, e) in s.exemplars.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"labels\":");
            write_labels(&mut out, &e.labels);
            out.push_str(",\"value\":\"");
            out.push_str(&format_value(e.value));
            out.push_str("\",\"timestamp\":");
            write_timestamp(&mut out, e.ts);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

/// `GET|POST /api/v1/format_query`: the query pretty-printed.
pub(crate) async fn format(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let query = required_query(&p)?;
    let expr = crate::parse_expr(&api, &query).map_err(|e| ApiError::bad_param("query", e))?;
    Ok(Success::json(&serde_json::Value::from(expr.prettify())))
}

fn required_query(p: &Params) -> Result<String, ApiError> {
    // Prometheus passes an absent query to the parser, which reports it as empty.
    p.get("query").map(str::to_string).ok_or_else(|| {
        ApiError::bad_param("query", "1:1: parse error: no expression found in input")
    })
}

/// An engine with the server's limits, narrowed by the request's `timeout` and `lookback_delta`.
fn engine(api: &Api, p: &Params) -> Result<Engine, ApiError> {
    let mut timeout = api.options.timeout;
    if let Some(ms) = p.duration("timeout")?
        && ms > 0
    {
        timeout = timeout.min(Duration::from_millis(ms as u64));
    }
    let mut lookback_delta = api.options.lookback_delta;
    if let Some(ms) = p.duration("lookback_delta")?
        && ms > 0
    {
        lookback_delta = Duration::from_millis(ms as u64);
    }
    Ok(Engine::new(EngineOptions {
        lookback_delta,
        max_samples: api.options.max_samples,
        timeout,
        experimental_functions: api.options.experimental_functions,
        limits: api.options.query_limits,
        sample_budget: api.options.sample_budget.clone(),
        ..EngineOptions::default()
    }))
}

/// Runs a query on a blocking thread once one of the `max_concurrency` slots is free; waiting for
/// a slot counts against the query's timeout, as in Prometheus's query gate.
async fn run<F>(api: &Arc<Api>, timeout: Duration, f: F) -> Result<QueryResult, ApiError>
where
    F: FnOnce(&edgeprom_storage::Storage) -> Result<QueryResult, edgeprom_promql::QueryError>
        + Send
        + 'static,
{
    let permit = tokio::time::timeout(timeout, api.queries.clone().acquire_owned())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorType::Timeout,
                "query timed out in query execution queue",
            )
        })?
        .map_err(|_| ApiError::new(ErrorType::Canceled, "query canceled: server shutting down"))?;
    let storage = api.storage.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&storage)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query evaluation failed: {e}")))?;
    Ok(result?)
}

/// Encodes a result as Prometheus's `{"resultType":…,"result":…}`.
fn encode(result: QueryResult) -> Success {
    let mut out = String::new();
    match &result.value {
        Value::Scalar(t, v) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            write_point(&mut out, *t, *v);
        }
        Value::String(t, s) => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            crate::response::write_timestamp(&mut out, *t);
            out.push(',');
            out.push_str(&crate::response::json_str(s));
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, &s.labels);
                out.push_str(",\"value\":");
                write_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, (t, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(&mut out, *t, *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    Success {
        data: out,
        warnings: result.warnings,
        infos: result.infos,
    }
}
