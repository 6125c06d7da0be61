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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use axum::body::Body;
    use axum::http::Request;
    use edgeprom_model::Labels;
    use edgeprom_model::rules::{AlertingStatus, GroupStatus, Health, RulesView};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::{ApiOptions, router};

    struct Fake;

    impl RulesView for Fake {
        fn groups(&self) -> Vec<GroupStatus> {
            let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
            let alert = AlertStatus {
                labels: Labels::from_pairs([("alertname", "Hot"), ("device", "0")]),
                annotations: Labels::from_pairs([("summary", "hot")]),
                state: "firing",
                active_at: at,
                keep_firing_since: None,
                value: "9.9e+01".into(),
            };
            let recording = RuleStatus {
                name: "job:up:sum".into(),
                query: "sum by (job) (up)".into(),
                labels: Labels::new(),
                health: Health::Err,
                last_error: "boom".into(),
                evaluation_time: 0.5,
                last_evaluation: Some(at),
                alerting: None,
            };
            let alerting = RuleStatus {
                name: "Hot".into(),
                query: "t > 95".into(),
                labels: Labels::from_pairs([("severity", "critical")]),
                health: Health::Ok,
                last_error: String::new(),
                evaluation_time: 0.25,
                last_evaluation: None,
                alerting: Some(AlertingStatus {
                    duration_secs: 30.0,
                    keep_firing_for_secs: 0.0,
                    annotations: Labels::from_pairs([("summary", "{{ $value }}")]),
                    state: "firing",
                    alerts: vec![alert],
                }),
            };
            vec![
                GroupStatus {
                    name: "g1".into(),
                    file: "/r/a.yml".into(),
                    interval_secs: 15.0,
                    limit: 0,
                    evaluation_time: 0.75,
                    last_evaluation: Some(at),
                    rules: vec![recording, alerting],
                },
                GroupStatus {
                    name: "empty".into(),
                    file: "/r/b.yml".into(),
                    interval_secs: 60.0,
                    limit: 3,
                    evaluation_time: 0.0,
                    last_evaluation: None,
                    rules: Vec::new(),
                },
            ]
        }

        fn alertmanagers(&self) -> Vec<String> {
            vec!["http://am:9093/api/v2/alerts".into()]
        }
    }

    async fn get(api: &Arc<Api>, uri: &str) -> (u16, Value) {
        let resp = router(api.clone())
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn rules_alerts_and_alertmanagers_in_prometheus_shapes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Arc::new(
            edgeprom_storage::Storage::open(dir.path(), Default::default()).expect("storage"),
        );
        let api = Arc::new(Api::new(storage, None, ApiOptions::default()));
        let (_, empty) = get(&api, "/api/v1/rules").await;
        assert_eq!(empty["data"], json!({"groups": []}), "no rules view yet");
        api.set_rules(Arc::new(Fake));

        let (status, v) = get(&api, "/api/v1/rules").await;
        assert_eq!(status, 200);
        let groups = v["data"]["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), 1, "a group without rules is left out: {v}");
        let g = &groups[0];
        assert_eq!(g["interval"], 15.0);
        assert_eq!(g["lastEvaluation"], "2023-11-14T22:13:20.500Z");
        let rec = &g["rules"][0];
        assert_eq!(rec["type"], "recording");
        assert_eq!(rec["health"], "err");
        assert_eq!(rec["lastError"], "boom");
        assert!(
            rec.get("labels").is_none(),
            "empty labels are omitted: {rec}"
        );
        let al = &g["rules"][1];
        assert_eq!(al["type"], "alerting");
        assert_eq!(al["duration"], 30.0);
        assert_eq!(al["lastEvaluation"], "0001-01-01T00:00:00Z");
        assert!(al.get("lastError").is_none());
        assert_eq!(al["alerts"][0]["activeAt"], "2023-11-14T22:13:20.500Z");
        assert_eq!(al["alerts"][0]["value"], "9.9e+01");

        let names = |v: &Value| -> Vec<String> {
            v["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["name"].as_str().map(String::from))
                .collect()
        };
        assert_eq!(
            names(&get(&api, "/api/v1/rules?type=record").await.1),
            ["job:up:sum"]
        );
        assert_eq!(
            names(&get(&api, "/api/v1/rules?type=alert").await.1),
            ["Hot"]
        );
        assert_eq!(
            names(&get(&api, "/api/v1/rules?rule_name[]=Hot").await.1),
            ["Hot"]
        );
        assert!(names(&get(&api, "/api/v1/rules?rule_group[]=other").await.1).is_empty());
        assert!(names(&get(&api, "/api/v1/rules?file[]=/r/b.yml").await.1).is_empty());
        assert_eq!(
            names(&get(&api, "/api/v1/rules?file[]=/r/a.yml").await.1).len(),
            2
        );
        let (_, excl) = get(&api, "/api/v1/rules?exclude_alerts=true").await;
        assert_eq!(excl["data"]["groups"][0]["rules"][1]["alerts"], json!([]));
        assert_eq!(get(&api, "/api/v1/rules?type=x").await.0, 400);
        assert_eq!(get(&api, "/api/v1/rules?exclude_alerts=maybe").await.0, 400);

        let (_, alerts) = get(&api, "/api/v1/alerts").await;
        assert_eq!(alerts["data"]["alerts"][0]["labels"]["alertname"], "Hot");
        assert_eq!(alerts["data"]["alerts"][0]["state"], "firing");
        let (_, ams) = get(&api, "/api/v1/alertmanagers").await;
        assert_eq!(
            ams["data"],
            json!({"activeAlertmanagers": [{"url": "http://am:9093/api/v2/alerts"}], "droppedAlertmanagers": []})
        );
    }
}
