//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers`, read from the rules manager
//! through the [`RulesView`](edgeprom_model::rules::RulesView) seam, in Prometheus's shapes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use edgeprom_model::rules::{AlertStatus, RuleStatus};
use serde_json::{Value, json};

use crate::response::labels_json;
use crate::{Api, ApiError, ApiResult, Params, Success};

/// Go's zero `time.Time`, which Prometheus shows for a rule never evaluated.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339(t: Option<SystemTime>) -> String {
    t.map_or(GO_ZERO_TIME.to_string(), |t| {
        DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

fn alert_json(a: &AlertStatus) -> Value {
    let mut v = json!({
        "labels": labels_json(&a.labels),
        "annotations": labels_json(&a.annotations),
        "state": a.state,
        "activeAt": rfc3339(Some(a.active_at)),
        "value": a.value,
    });
    if let Some(k) = a.keep_firing_since {
        v["keepFiringSince"] = Value::String(rfc3339(Some(k)));
    }
    v
}

fn rule_json(r: &RuleStatus, with_alerts: bool) -> Value {
    let mut v = match &r.alerting {
        Some(a) => json!({
            "state": a.state,
            "name": r.name,
            "query": r.query,
            "duration": a.duration_secs,
            "keepFiringFor": a.keep_firing_for_secs,
            "labels": labels_json(&r.labels),
            "annotations": labels_json(&a.annotations),
            "alerts": if with_alerts { a.alerts.iter().map(alert_json).collect::<Vec<_>>() } else { Vec::new() },
            "health": r.health.as_str(),
            "evaluationTime": r.evaluation_time,
            "lastEvaluation": rfc3339(r.last_evaluation),
            "type": "alerting",
        }),
        None => {
            let mut v = json!({
                "name": r.name,
                "query": r.query,
                "health": r.health.as_str(),
                "evaluationTime": r.evaluation_time,
                "lastEvaluation": rfc3339(r.last_evaluation),
                "type": "recording",
            });
            if !r.labels.is_empty() {
                v["labels"] = labels_json(&r.labels);
            }
            v
        }
    };
    if !r.last_error.is_empty() {
        v["lastError"] = Value::String(r.last_error.clone());
    }
    v
}

/// `GET /api/v1/rules` with `type`, `rule_name[]`, `rule_group[]`, `file[]` and
/// `exclude_alerts`; groups left without rules by the filters are not shown, as in Prometheus.
pub(crate) async fn rules(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let (want_alerts, want_records) = match p.get("type") {
        None | Some("") => (true, true),
        Some("alert") => (true, false),
        Some("record") => (false, true),
        Some(t) => {
            return Err(ApiError::bad_param(
                "type",
                format!("not supported value {t:?}"),
            ));
        }
    };
    let exclude_alerts = match p.get("exclude_alerts") {
        None | Some("") => false,
        Some(v) => v.parse::<bool>().map_err(|_| {
            ApiError::bad_param("exclude_alerts", format!("parsing {v:?}: invalid syntax"))
        })?,
    };
    let set =
        |name: &str| -> HashSet<String> { p.all(name).into_iter().map(String::from).collect() };
    let (names, groups, files) = (set("rule_name[]"), set("rule_group[]"), set("file[]"));
    let mut out = Vec::new();
    for g in api.rules_view().map(|v| v.groups()).unwrap_or_default() {
        if (!groups.is_empty() && !groups.contains(&g.name))
            || (!files.is_empty() && !files.contains(&g.file))
        {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| names.is_empty() || names.contains(&r.name))
            .filter(|r| {
                if r.alerting.is_some() {
                    want_alerts
                } else {
                    want_records
                }
            })
            .map(|r| rule_json(r, !exclude_alerts))
            .collect();
        if rules.is_empty() {
            continue;
        }
        out.push(json!({
            "name": g.name,
            "file": g.file,
            "rules": rules,
            "interval": g.interval_secs,
            "limit": g.limit,
            "evaluationTime": g.evaluation_time,
            "lastEvaluation": rfc3339(g.last_evaluation),
        }));
    }
    Ok(Success::json(&json!({ "groups": out })))
}

/// `GET /api/v1/alerts`: every pending and firing alert.
pub(crate) async fn alerts(State(api): State<Arc<Api>>) -> ApiResult {
    let alerts: Vec<Value> = api
        .rules_view()
        .map(|v| v.groups())
        .unwrap_or_default()
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| r.alerting.as_ref())
        .flat_map(|a| a.alerts.iter().map(alert_json))
        .collect();
    Ok(Success::json(&json!({ "alerts": alerts })))
}

/// `GET /api/v1/alertmanagers`: where alerts are sent.
pub(crate) async fn alertmanagers(State(api): State<Arc<Api>>) -> ApiResult {
    let active: Vec<Value> = api
        .rules_view()
        .map(|v| v.alertmanagers())
        .unwrap_or_default()
        .into_iter()
        .map(|url| json!({ "url": url }))
        .collect();
    Ok(Success::json(
        &json!({"activeAlertmanagers": active, "droppedAlertmanagers": []}),
    ))
}
