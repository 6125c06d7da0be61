//! Evaluation over real storage: recording rules against direct queries, the alert state
//! machine, and `for` restored after a restart.

use std::path::Path;
use std::time::Duration;

use edgeprom_model::{Appendable, Labels};
use edgeprom_promql::{Engine, Value};
use edgeprom_storage::{Options, Storage};

use crate::file::RuleFile;
use crate::group::{AlertState, EvalContext, Group};
use crate::metrics::RuleMetrics;

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

fn storage(dir: &Path) -> Storage {
    Storage::open(dir, Options::default()).expect("open storage")
}

fn ctx(grace: Duration) -> EvalContext {
    EvalContext {
        engine: Engine::default(),
        external_labels: Labels::from_pairs([("cluster", "edge-1")]),
        external_url: "http://edge:9090".into(),
        resend_delay: Duration::from_secs(60),
        outage_tolerance: Duration::from_secs(3600),
        grace_period: grace,
    }
}

fn group(yaml: &str) -> Group {
    let f = RuleFile::parse(yaml, Path::new("/r/rules.yml")).expect("rules parse");
    let spec = f.groups.into_iter().next().expect("one group");
    Group::new(spec, Duration::from_secs(15), Duration::ZERO)
}

/// Appends `value(t)` for `labels` every 15 s in `[from, to]`.
fn fill(s: &Storage, labels: &[(&str, &str)], from: i64, to: i64, value: impl Fn(i64) -> f64) {
    let l = Labels::from_pairs(labels.iter().copied());
    let mut app = s.appender();
    let mut t = from;
    while t <= to {
        app.append(None, &l, t, value(t)).expect("append");
        t += 15_000;
    }
    app.commit().expect("commit");
}

fn vector(s: &Storage, q: &str, t: i64) -> Vec<(Labels, f64)> {
    match Engine::default()
        .instant_query(s, q, t)
        .expect("query")
        .value
    {
        Value::Vector(v) => {
            let mut out: Vec<(Labels, f64)> = v
                .into_iter()
                .map(|x| {
                    let mut b = x.labels.to_builder();
                    b.del("__name__");
                    (b.build(), x.v)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("vector expected, got {other:?}"),
    }
}

#[test]
fn recording_rule_output_equals_the_expression_queried_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = storage(dir.path());
    for (job, inst, rate) in [
        ("api", "a:1", 2.0),
        ("api", "a:2", 3.5),
        ("db", "d:1", 0.25),
    ] {
        fill(
            &s,
            &[
                ("__name__", "http_requests_total"),
                ("job", job),
                ("instance", inst),
            ],
            T0,
            T0 + 20 * MIN,
            |t| ((t - T0) / 1000) as f64 * rate,
        );
    }
    let expr = "sum by (job) (rate(http_requests_total[5m]))";
    let mut g = group(&format!(
        "groups:\n  - name: rec\n    rules:\n      - record: job:http_requests:rate5m\n        expr: {expr}\n        labels:\n          source: rule\n"
    ));
    let metrics = RuleMetrics::default();
    let c = ctx(Duration::from_secs(600));
    let mut checked = 0;
    for step in 0..8 {
        let ts = T0 + 10 * MIN + step * 15_000;
        g.eval(ts, &c, &s, &metrics);
        let recorded = vector(&s, "job:http_requests:rate5m", ts);
        let direct: Vec<(Labels, f64)> = vector(&s, expr, ts)
            .into_iter()
            .map(|(l, v)| {
                let mut b = l.to_builder();
                b.set("source", "rule");
                (b.build(), v)
            })
            .collect();
        assert_eq!(recorded.len(), 2);
        assert_eq!(recorded, direct, "at {ts}");
        checked += recorded.len();
    }
    assert_eq!(checked, 16);
    assert!(g.rules[0].last_error.is_empty());
    // When the input disappears the recorded series ends with a stale marker, not 5 min later.
    let end = T0 + 40 * MIN;
    g.eval(end, &c, &s, &metrics);
    assert!(vector(&s, "job:http_requests:rate5m", end + 1000).is_empty());
    assert!(!vector(&s, "last_over_time(job:http_requests:rate5m[1h])", end - 1).is_empty());
}

#[test]
fn a_failed_evaluation_writes_nothing_and_ends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = storage(dir.path());
    fill(
        &s,
        &[("__name__", "flappy_total"), ("instance", "x")],
        T0,
        T0 + 11 * MIN,
        |_| 1.0,
    );
    for inst in ["y", "z"] {
        fill(
            &s,
            &[("__name__", "flappy_total"), ("instance", inst)],
            T0 + 12 * MIN,
            T0 + 20 * MIN,
            |_| 2.0,
        );
    }
    let mut g = group(
        "groups:\n  - name: limited\n    limit: 2\n    rules:\n      - record: flappy:copy\n        expr: flappy_total\n",
    );
    let metrics = RuleMetrics::default();
    let c = ctx(Duration::from_secs(600));
    g.eval(T0 + 11 * MIN, &c, &s, &metrics);
    assert!(g.rules[0].last_error.is_empty());
    assert_eq!(vector(&s, "flappy:copy", T0 + 11 * MIN).len(), 1);
    // Three series over a limit of 2: the rule fails; what it wrote before is not ended.
    g.eval(T0 + 12 * MIN + 15_000, &c, &s, &metrics);
    assert_eq!(g.rules[0].last_error, "exceeded limit of 2 with 3 series");
    assert_eq!(vector(&s, "flappy:copy", T0 + 12 * MIN + 16_000).len(), 1);
}

const ALERT: &str = "groups:\n  - name: xpu\n    rules:\n      - alert: XPUCriticalTemperature\n        expr: xpu_temperature_celsius{location=\"gpu\"} > 95\n        for: 30s\n        labels:\n          severity: critical\n        annotations:\n          description: \"XPU device {{ $labels.device_id }} GPU temperature is {{ $value | printf \\\"%.1f\\\" }}°C on {{ $externalLabels.cluster }}\"\n";

#[test]
fn alert_goes_pending_firing_resolved_with_alerts_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = storage(dir.path());
    let temp = [
        ("__name__", "xpu_temperature_celsius"),
        ("location", "gpu"),
        ("device_id", "0"),
    ];
    // 90 °C, then 97 °C from minute 2 to minute 4, then 80 °C.
    fill(&s, &temp, T0, T0 + 6 * MIN, |t| match t - T0 {
        d if (2 * MIN..4 * MIN).contains(&d) => 97.04,
        d if d < 2 * MIN => 90.0,
        _ => 80.0,
    });
    let mut g = group(ALERT);
    let metrics = RuleMetrics::default();
    let c = ctx(Duration::from_secs(600));
    let state = |g: &Group| g.rules[0].active.values().next().map(|a| a.state);

    assert!(g.eval(T0 + MIN, &c, &s, &metrics).is_empty());
    assert_eq!(state(&g), None);
    assert!(g.eval(T0 + 2 * MIN, &c, &s, &metrics).is_empty());
    assert_eq!(state(&g), Some(AlertState::Pending));
    let alerts = vector(&s, "ALERTS", T0 + 2 * MIN);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0.get("alertstate"), Some("pending"));
    assert_eq!(alerts[0].0.get("severity"), Some("critical"));
    let a = g.rules[0].active.values().next().expect("alert");
    assert_eq!(
        a.annotations.get("description"),
        Some("XPU device 0 GPU temperature is 97.0°C on edge-1")
    );

    assert!(g.eval(T0 + 2 * MIN + 15_000, &c, &s, &metrics).is_empty());
    let sent = g.eval(T0 + 2 * MIN + 30_000, &c, &s, &metrics);
    assert_eq!(state(&g), Some(AlertState::Firing));
    assert_eq!(sent.len(), 1, "firing alert sent once");
    assert_eq!(sent[0].starts_at, T0 + 2 * MIN + 30_000);
    assert_eq!(sent[0].ends_at, T0 + 2 * MIN + 30_000 + 4 * MIN);
    assert!(
        sent[0]
            .generator_url
            .starts_with("http://edge:9090/graph?g0.expr=")
    );
    let firing = vector(&s, "ALERTS", T0 + 2 * MIN + 30_000);
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].0.get("alertstate"), Some("firing"));
    assert_eq!(
        vector(&s, "ALERTS_FOR_STATE", T0 + 2 * MIN + 30_000)[0].1,
        ((T0 + 2 * MIN) / 1000) as f64
    );
    // Not re-sent before resend_delay, re-sent after it.
    assert!(g.eval(T0 + 3 * MIN, &c, &s, &metrics).is_empty());
    assert_eq!(g.eval(T0 + 3 * MIN + 45_000, &c, &s, &metrics).len(), 1);

    let resolved = g.eval(T0 + 4 * MIN + 15_000, &c, &s, &metrics);
    assert_eq!(state(&g), Some(AlertState::Inactive));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ends_at, T0 + 4 * MIN + 15_000);
    assert!(
        vector(&s, "ALERTS", T0 + 4 * MIN + 15_000).is_empty(),
        "stale marker ends ALERTS"
    );
    let status = g.status();
    assert_eq!(
        status.rules[0].alerting.as_ref().map(|a| a.state),
        Some("inactive")
    );
}

#[test]
fn for_state_is_restored_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = storage(dir.path());
    let temp = [
        ("__name__", "xpu_temperature_celsius"),
        ("location", "gpu"),
        ("device_id", "0"),
    ];
    fill(&s, &temp, T0, T0 + 20 * MIN, |_| 99.0);
    let yaml = ALERT.replace("for: 30s", "for: 10m");
    let metrics = RuleMetrics::default();
    let c = ctx(Duration::from_secs(60));
    let mut before = group(&yaml);
    let mut t = T0 + MIN;
    while t <= T0 + 3 * MIN {
        before.eval(t, &c, &s, &metrics);
        t += 15_000;
    }
    let active_at = |g: &Group| g.rules[0].active.values().next().map(|a| a.active_at);
    // The first evaluation writes nothing until restored; the second writes ALERTS_FOR_STATE.
    assert_eq!(active_at(&before), Some(T0 + MIN));
    drop(before);

    // Down from minute 3 to minute 5: pending had 2 min, 8 min remain, so it fires at minute 13
    // (activeAt shifted by the 2 min downtime), not at minute 15 as a fresh start would.
    let mut after = group(&yaml);
    after.eval(T0 + 5 * MIN, &c, &s, &metrics);
    assert_eq!(active_at(&after), Some(T0 + MIN + 2 * MIN));
    after.eval(T0 + 13 * MIN - 15_000, &c, &s, &metrics);
    assert_eq!(
        after.rules[0].active.values().next().map(|a| a.state),
        Some(AlertState::Pending)
    );
    after.eval(T0 + 13 * MIN, &c, &s, &metrics);
    assert_eq!(
        after.rules[0].active.values().next().map(|a| a.state),
        Some(AlertState::Firing)
    );
}

#[test]
fn keep_firing_for_holds_a_firing_alert_after_its_condition_clears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = storage(dir.path());
    let temp = [
        ("__name__", "xpu_temperature_celsius"),
        ("location", "gpu"),
        ("device_id", "0"),
    ];
    // Hot for the first two minutes, then cool.
    fill(&s, &temp, T0, T0 + 10 * MIN, |t| {
        if t - T0 < 2 * MIN { 99.0 } else { 50.0 }
    });
    let yaml = ALERT
        .replace("for: 30s", "for: 0s\n        keep_firing_for: 1m")
        .replace(
            "severity: critical",
            "severity: '{{ if gt $value 98.0 }}page{{ else }}ticket{{ end }}'",
        );
    let mut g = group(&yaml);
    let metrics = RuleMetrics::default();
    let c = ctx(Duration::from_secs(600));
    let state = |g: &Group| g.rules[0].active.values().next().map(|a| a.state);
    g.eval(T0 + MIN, &c, &s, &metrics);
    assert_eq!(state(&g), Some(AlertState::Firing), "for: 0s fires at once");
    let labels = &g.rules[0].active.values().next().expect("alert").labels;
    assert_eq!(
        labels.get("severity"),
        Some("page"),
        "label templates are expanded"
    );
    // The condition clears at minute 2; the alert keeps firing for one more minute.
    g.eval(T0 + 2 * MIN + 15_000, &c, &s, &metrics);
    assert_eq!(state(&g), Some(AlertState::Firing));
    assert_eq!(
        g.rules[0]
            .active
            .values()
            .next()
            .and_then(|a| a.keep_firing_since),
        Some(T0 + 2 * MIN + 15_000)
    );
    g.eval(T0 + 3 * MIN, &c, &s, &metrics);
    assert_eq!(state(&g), Some(AlertState::Firing));
    g.eval(T0 + 3 * MIN + 15_000, &c, &s, &metrics);
    assert_eq!(state(&g), Some(AlertState::Inactive));
}
