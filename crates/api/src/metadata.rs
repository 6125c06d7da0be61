//! `/api/v1/metadata` and `/api/v1/targets/metadata`: the HELP/TYPE/UNIT the scrape loops keep
//! per target, aggregated as Prometheus's `metricMetadata` and `targetMetadata` do.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use edgeprom_scrape::{MetricMetadata, TargetMetadata};
use edgeprom_storage::index::Matcher;
use promql_parser::parser::Expr;
use serde_json::{Value, json};

use crate::response::labels_json;
use crate::series::selector_sets;
use crate::{Api, ApiError, ApiResult, Params, Success};

/// A Prometheus limit parameter: absent means -1 (no limit), `0` means nothing, any other
/// negative number means no limit; not a number is `bad_data` with Prometheus's wording.
fn limit_param(p: &Params, name: &str) -> Result<i64, ApiError> {
    match p.get(name) {
        None => Ok(-1),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::bad_data(format!("{name} must be a number"))),
    }
}

fn metadata_of(api: &Api) -> Vec<TargetMetadata> {
    api.manager
        .as_ref()
        .map(|m| m.metadata())
        .unwrap_or_default()
}

fn entry_json(m: &MetricMetadata) -> Value {
    json!({"type": m.kind.as_str(), "help": m.help, "unit": m.unit})
}

/// `GET /api/v1/metadata`: per metric family, the distinct (type, help, unit) triples across
/// targets; `metric` narrows to one family, `limit` caps the families and `limit_per_metric`
/// the triples per family.
pub(crate) async fn metadata(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let limit = limit_param(&p, "limit")?;
    let limit_per_metric = limit_param(&p, "limit_per_metric")?;
    let metric = p.get("metric");
    let targets = metadata_of(&api);
    Ok(Success::json(&aggregate(
        &targets,
        metric,
        limit,
        limit_per_metric,
    )))
}

/// The body of `/api/v1/metadata`. Families come in name order, so a `limit` keeps the first
/// names (Prometheus keeps an arbitrary subset); each family's triples in the order targets
/// were first seen declaring them.
fn aggregate(
    targets: &[TargetMetadata],
    metric: Option<&str>,
    limit: i64,
    limit_per_metric: i64,
) -> Value {
    let mut families: BTreeMap<&str, Vec<&MetricMetadata>> = BTreeMap::new();
    for t in targets {
        let entries: Box<dyn Iterator<Item = &MetricMetadata>> = match metric {
            None => Box::new(t.metadata.iter()),
            Some(m) => Box::new(t.metadata.iter().filter(move |e| e.metric_family == m)),
        };
        for e in entries {
            let list = families.entry(&e.metric_family).or_default();
            if limit_per_metric > 0 && list.len() as i64 >= limit_per_metric {
                continue;
            }
            let same =
                |x: &&MetricMetadata| x.kind == e.kind && x.help == e.help && x.unit == e.unit;
            if !list.iter().any(same) {
                list.push(e);
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (name, list) in families {
        if limit >= 0 && out.len() as i64 >= limit {
            break;
        }
        out.insert(
            name.to_string(),
            Value::from(list.into_iter().map(entry_json).collect::<Vec<_>>()),
        );
    }
    Value::Object(out)
}

/// `GET /api/v1/targets/metadata`: one entry per (target, family) for the targets whose labels
/// match `match_target`; with `metric`, that family only and without the `metric` field, as
/// Prometheus answers. `limit` is checked before each target, so a target's entries are never
/// split.
pub(crate) async fn targets_metadata(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let limit = limit_param(&p, "limit")?;
    let matchers = match p.get("match_target") {
        None => None,
        Some(s) => Some(target_matchers(s)?),
    };
    let metric = p.get("metric");
    let targets = metadata_of(&api);
    Ok(Success::json(&per_target(
        &targets,
        matchers.as_deref(),
        metric,
        limit,
    )))
}

/// Parses `match_target` as Prometheus's `ParseMetricSelector` does: a single vector selector.
fn target_matchers(s: &str) -> Result<Vec<Matcher>, ApiError> {
    let bad = |m: String| ApiError::bad_param("match_target", m);
    let limits = edgeprom_promql::QueryLimits::default();
    match edgeprom_promql::parse_bounded(s, &limits).map_err(|e| bad(e.to_string()))? {
        Expr::VectorSelector(vs) => {
            let mut sets = selector_sets(&vs).map_err(|e| bad(e.to_string()))?;
            if sets.len() != 1 {
                return Err(bad(format!(
                    "{s}: \"or\" is not allowed in a target selector"
                )));
            }
            Ok(sets.pop().unwrap_or_default())
        }
        _ => Err(bad(format!(
            "1:1: parse error: expected type instant vector selector in {s}"
        ))),
    }
}

fn per_target(
    targets: &[TargetMetadata],
    matchers: Option<&[Matcher]>,
    metric: Option<&str>,
    limit: i64,
) -> Value {
    let mut out = Vec::new();
    for t in targets {
        if limit >= 0 && out.len() as i64 >= limit {
            break;
        }
        let labels = &t.target.labels;
        if let Some(ms) = matchers
            && !ms
                .iter()
                .all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
        {
            continue;
        }
        for e in t.metadata.iter() {
            match metric {
                None => out.push(json!({
                    "target": labels_json(labels),
                    "metric": e.metric_family,
                    "type": e.kind.as_str(),
                    "help": e.help,
                    "unit": e.unit,
                })),
                Some(m) if e.metric_family == m => out.push(json!({
                    "target": labels_json(labels),
                    "type": e.kind.as_str(),
                    "help": e.help,
                    "unit": e.unit,
                })),
                Some(_) => {}
            }
        }
    }
    Value::from(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeprom_model::MetricType;

    use super::*;

    fn target(instance: &str, entries: &[(&str, MetricType, &str)]) -> TargetMetadata {
        let job = edgeprom_config::Config::parse(
            "scrape_configs:\n  - job_name: j\n",
            std::path::Path::new("t.yml"),
        )
        .expect("config")
        .scrape_configs
        .remove(0);
        let (t, _) =
            edgeprom_scrape::populate_labels(&job, &BTreeMap::new(), instance).expect("target");
        TargetMetadata {
            target: t.expect("kept"),
            metadata: entries
                .iter()
                .map(|(name, kind, help)| MetricMetadata {
                    metric_family: name.to_string(),
                    kind: *kind,
                    help: help.to_string(),
                    unit: String::new(),
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    fn two_targets() -> Vec<TargetMetadata> {
        vec![
            target(
                "a:1",
                &[
                    ("go_goroutines", MetricType::Gauge, "Goroutines."),
                    ("http_requests", MetricType::Counter, "Requests."),
                ],
            ),
            target(
                "b:1",
                &[
                    ("go_goroutines", MetricType::Gauge, "Goroutines."),
                    ("http_requests", MetricType::Counter, "Requests handled."),
                ],
            ),
        ]
    }

    #[test]
    fn metadata_is_deduplicated_across_targets_and_limited() {
        let t = two_targets();
        assert_eq!(
            aggregate(&t, None, -1, -1),
            json!({
                "go_goroutines": [{"type": "gauge", "help": "Goroutines.", "unit": ""}],
                "http_requests": [
                    {"type": "counter", "help": "Requests.", "unit": ""},
                    {"type": "counter", "help": "Requests handled.", "unit": ""},
                ],
            })
        );
        assert_eq!(aggregate(&t, None, 0, -1), json!({}));
        assert_eq!(
            aggregate(&t, None, 1, -1).as_object().map(|o| o.len()),
            Some(1)
        );
        assert_eq!(
            aggregate(&t, None, -1, 1)["http_requests"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        assert_eq!(
            aggregate(&t, Some("go_goroutines"), -1, -1),
            json!({"go_goroutines": [{"type": "gauge", "help": "Goroutines.", "unit": ""}]})
        );
        assert_eq!(aggregate(&t, Some("absent"), -1, -1), json!({}));
    }

    #[test]
    fn targets_metadata_filters_by_target_and_metric() {
        let t = two_targets();
        let all = per_target(&t, None, None, -1);
        assert_eq!(all.as_array().map(Vec::len), Some(4));
        assert_eq!(all[0]["target"], json!({"instance": "a:1", "job": "j"}));
        assert_eq!(all[0]["metric"], "go_goroutines");
        let ms = target_matchers("{instance=\"b:1\"}").expect("selector");
        let b = per_target(&t, Some(&ms), Some("http_requests"), -1);
        assert_eq!(
            b,
            json!([{
                "target": {"instance": "b:1", "job": "j"},
                "type": "counter",
                "help": "Requests handled.",
                "unit": "",
            }])
        );
        // The limit is checked per target: the first target's entries are all kept.
        assert_eq!(
            per_target(&t, None, None, 1).as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(per_target(&t, None, None, 0), json!([]));
        assert!(target_matchers("sum(up)").is_err());
    }
}
