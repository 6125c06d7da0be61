//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use edgeprom_storage::index::{MatchType, Matcher, MatcherError};
use edgeprom_storage::{Deadline, DeadlineExceeded, Storage};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

use crate::params::{MAX_TIME, MIN_TIME};
use crate::response::ErrorType;
use crate::response::labels_json;
use crate::{Api, ApiError, ApiResult, Params, Success};

const TRUNCATED: &str = "results truncated due to limit";

/// Parses `match[]` selectors into matcher sets, one per selector (and per `or` branch).
pub(crate) fn match_sets(api: &Api, p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    match_sets_until(api, &p.all("match[]"), Deadline::NONE)
}

/// [`match_sets`] of the selectors `matches`, giving up once `deadline` passes: each selector's
/// regexes are compiled twice (by the parser and for the index), so thousands of them take
/// seconds on their own. Runs on a blocking thread, like the reads that follow.
pub(crate) fn match_sets_until(
    api: &Api,
    matches: &[impl AsRef<str>],
    deadline: Deadline,
) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut sets = Vec::new();
    for s in matches {
        deadline.check()?;
        let s = s.as_ref();
        let bad = |m: String| ApiError::bad_param("match[]", m);
        let Expr::VectorSelector(vs) = crate::parse_expr(api, s).map_err(bad)? else {
            return Err(bad(edgeprom_promql::limits::truncate_message(format!(
                "1:1: parse error: expected type instant vector selector in {s}"
            ))));
        };
        sets.extend(selector_sets(&vs).map_err(|e| bad(e.to_string()))?);
    }
    Ok(sets)
}

/// A vector selector's matchers as storage matchers, one set per `or` branch, with the metric
/// name as a `__name__` matcher unless the branch has one.
pub(crate) fn selector_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, MatcherError> {
    let mut groups = Vec::new();
    if !vs.matchers.matchers.is_empty() || vs.matchers.or_matchers.is_empty() {
        groups.push(vs.matchers.matchers.clone());
    }
    groups.extend(vs.matchers.or_matchers.iter().cloned());
    let mut sets = Vec::with_capacity(groups.len());
    for g in groups {
        let mut set = Vec::with_capacity(g.len() + 1);
        for m in &g {
            let kind = match m.op {
                MatchOp::Equal => MatchType::Equal,
                MatchOp::NotEqual => MatchType::NotEqual,
                MatchOp::Re(_) => MatchType::Regex,
                MatchOp::NotRe(_) => MatchType::NotRegex,
            };
            set.push(Matcher::new(kind, &m.name, &m.value)?);
        }
        if let Some(name) = &vs.name
            && !g.iter().any(|m| m.name == "__name__")
        {
            set.push(Matcher::new(MatchType::Equal, "__name__", name)?);
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Matches every series: all have a metric name.
fn all_series() -> Result<Vec<Matcher>, ApiError> {
    Matcher::new(MatchType::Regex, "__name__", ".+")
        .map(|m| vec![m])
        .map_err(|e| ApiError::internal(e.to_string()))
}

struct Window {
    start: i64,
    end: i64,
    /// Whether the request named a time range (otherwise the storage indexes answer directly).
    given: bool,
}

fn window(p: &Params) -> Result<Window, ApiError> {
    let start = p.time("start", MIN_TIME)?;
    let end = p.time("end", MAX_TIME)?;
    if end < start {
        return Err(ApiError::bad_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    Ok(Window {
        start,
        end,
        given: p.get("start").is_some() || p.get("end").is_some(),
    })
}

/// When a series, label or federation read must give up: `--query.timeout` from now, or the
/// request's `timeout` when shorter, as for queries. Prometheus bounds these reads only by the
/// HTTP server's timeouts; without a bound here, a few thousand regex `match[]` over a large
/// index hold a blocking thread for seconds each.
pub(crate) fn read_deadline(api: &Api, p: &Params) -> Result<Deadline, ApiError> {
    let mut timeout = api.options.timeout;
    if let Some(ms) = p.duration("timeout")?
        && ms > 0
    {
        timeout = timeout.min(std::time::Duration::from_millis(ms as u64));
    }
    Ok(Deadline::after(timeout))
}

/// The message a read stopped by its deadline answers with (503 `timeout`, see
/// `From<DeadlineExceeded> for ApiError`), worded like Prometheus's query timeouts
/// (`query timed out in <stage>`); also the plain-text body of a timed-out `/federate`.
pub(crate) const READ_TIMED_OUT: &str = "query timed out in series selection";

impl From<DeadlineExceeded> for ApiError {
    fn from(_: DeadlineExceeded) -> ApiError {
        ApiError::new(ErrorType::Timeout, READ_TIMED_OUT)
    }
}

/// Runs the parsing of `match[]` and the storage reads off the async threads: thousands of
/// selectors or a large index walk must not stall other requests.
async fn blocking<T: Send + 'static>(
    api: &Arc<Api>,
    f: impl FnOnce(&Api, &Storage) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let api = api.clone();
    tokio::task::spawn_blocking(move || f(&api, &api.storage))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// The `match[]` values, owned, to parse on a blocking thread.
fn matches(p: &Params) -> Vec<String> {
    p.all("match[]").into_iter().map(str::to_string).collect()
}

fn truncate<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        return (items, vec![TRUNCATED.to_string()]);
    }
    (items, Vec::new())
}

fn string_list(items: Vec<String>, warnings: Vec<String>) -> Success {
    Success {
        warnings,
        ..Success::json(&serde_json::Value::from(items))
    }
}

/// `GET|POST /api/v1/series`: label sets of series matching any `match[]` in the range.
pub(crate) async fn series(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    if p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let deadline = read_deadline(&api, &p)?;
    let w = window(&p)?;
    let limit = p.limit()?;
    let matches = matches(&p);
    let all = blocking(&api, move |api, s| {
        let sets = match_sets_until(api, &matches, deadline)?;
        let mut out = BTreeSet::new();
        for set in &sets {
            out.extend(
                s.select_until(set, w.start, w.end, deadline)?
                    .into_iter()
                    .map(|d| d.labels),
            );
        }
        Ok(out)
    })
    .await?;
    let (list, warnings) = truncate(all.into_iter().collect(), limit);
    let data: Vec<serde_json::Value> = list.iter().map(labels_json).collect();
    Ok(Success {
        warnings,
        ..Success::json(&serde_json::Value::from(data))
    })
}

/// `GET|POST /api/v1/labels`: label names of series matching `match[]` (all when absent).
pub(crate) async fn labels(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let deadline = read_deadline(&api, &p)?;
    let w = window(&p)?;
    let limit = p.limit()?;
    let all = all_series()?;
    let matches = matches(&p);
    let names = blocking(&api, move |api, s| {
        let sets = match_sets_until(api, &matches, deadline)?;
        let sets = if sets.is_empty() { vec![all] } else { sets };
        let mut out = BTreeSet::new();
        for set in &sets {
            if w.given {
                for d in s.select_until(set, w.start, w.end, deadline)? {
                    out.extend(d.labels.iter().map(|l| l.name.clone()));
                }
            } else {
                out.extend(s.label_names_until(set, deadline)?);
            }
        }
        Ok(out.into_iter().collect::<Vec<_>>())
    })
    .await?;
    let (list, warnings) = truncate(names, limit);
    Ok(string_list(list, warnings))
}

/// `GET /api/v1/label/<name>/values`: values of one label on series matching `match[]`.
pub(crate) async fn label_values(
    State(api): State<Arc<Api>>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    p: Params,
) -> ApiResult {
    // A name that is not UTF-8 once percent-decoded is refused in Prometheus's JSON, not with
    // axum's plain-text rejection.
    let Path(name) = name.map_err(|e| ApiError::bad_data(format!("invalid label name: {e}")))?;
    let name = unescape_label_name(&name);
    if name.is_empty() {
        return Err(ApiError::bad_data(format!(
            "invalid label name: \"{name}\""
        )));
    }
    let deadline = read_deadline(&api, &p)?;
    let w = window(&p)?;
    let limit = p.limit()?;
    let all = all_series()?;
    let matches = matches(&p);
    let values = blocking(&api, move |api, s| {
        let sets = match_sets_until(api, &matches, deadline)?;
        let sets = if sets.is_empty() { vec![all] } else { sets };
        let mut out = BTreeSet::new();
        for set in &sets {
            if w.given {
                for d in s.select_until(set, w.start, w.end, deadline)? {
                    if let Some(v) = d.labels.get(&name) {
                        out.insert(v.to_string());
                    }
                }
            } else {
                out.extend(s.label_values_until(&name, set, deadline)?);
            }
        }
        Ok(out.into_iter().collect::<Vec<_>>())
    })
    .await?;
    let (list, warnings) = truncate(values, limit);
    Ok(string_list(list, warnings))
}

/// Undoes Prometheus's `U__` label-name escaping (`_` → `_` pairs, `_<hex>_` → code point), which
/// Grafana applies to names that are not valid legacy identifiers.
fn unescape_label_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let hex: String = chars.by_ref().take_while(|&c| c != '_').collect();
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(decoded) => out.push(decoded),
            // Not a valid escape: Prometheus keeps the name as given.
            None => return name.to_string(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_label_names_decode() {
        assert_eq!(unescape_label_name("job"), "job");
        assert_eq!(unescape_label_name("U__my_2e_label"), "my.label");
        assert_eq!(unescape_label_name("U__a__b"), "a_b");
        assert_eq!(unescape_label_name("U__x_zz_"), "U__x_zz_");
    }
}
