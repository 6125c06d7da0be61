//! One rule group's state and its evaluation: Prometheus's `rules.Group.Eval`,
//! `RecordingRule.Eval` and `AlertingRule.Eval`, synchronously over storage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use edgeprom_model::rules::{AlertStatus, AlertingStatus, GroupStatus, Health, RuleStatus};
use edgeprom_model::{Appendable, Labels, LabelsBuilder, names, stale_nan};
use edgeprom_promql::{Engine, Value};
use edgeprom_storage::Storage;
use edgeprom_storage::index::{MatchType, Matcher};

use crate::file::{GroupSpec, RuleKind, RuleSpec};
use crate::gofmt;
use crate::metrics::RuleMetrics;
use crate::notifier::NotifyAlert;
use crate::template::{self, Template};

/// How long a resolved alert is kept (and re-sent as resolved), as in Prometheus.
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Settings every group shares, fixed between reloads.
#[derive(Clone)]
pub struct EvalContext {
    /// The PromQL engine.
    pub engine: Engine,
    /// `global.external_labels`, seen by templates as `$externalLabels`.
    pub external_labels: Labels,
    /// The URL this server is reachable at, for `$externalURL` and `generatorURL`.
    pub external_url: String,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance`.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub grace_period: Duration,
}

/// An alert's state, as in Prometheus's `rules.AlertState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    /// Resolved, kept to be reported as resolved.
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule; times are Unix milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
    pub state: AlertState,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        self.last_sent_at.is_none_or(|l| l + resend_delay_ms < ts)
    }
}

/// A rule and its evaluation state.
pub(crate) struct Rule {
    pub spec: RuleSpec,
    /// The expression printed back from its syntax tree, one line, as the API shows it.
    query_text: String,
    label_templates: Vec<(String, Template)>,
    annotation_templates: Vec<(String, Template)>,
    pub health: Health,
    pub last_error: String,
    pub eval_duration: Duration,
    pub last_eval: Option<SystemTime>,
    /// Alerts by final label set.
    pub active: HashMap<Labels, Alert>,
    /// ALERTS/ALERTS_FOR_STATE are written only once the `for` state was restored.
    pub restored: bool,
    /// Series written by the previous evaluation, for stale markers.
    pub previous_series: HashSet<Labels>,
}

impl Rule {
    pub fn new(spec: RuleSpec) -> Rule {
        let parse = |m: &BTreeMap<String, String>| {
            m.iter()
                // Already checked at load; a template that fails here expands to its error.
                .map(|(k, v)| {
                    let t = Template::parse(v).unwrap_or_else(|_| Template::literal(v));
                    (k.clone(), t)
                })
                .collect::<Vec<_>>()
        };
        let (label_templates, annotation_templates) = match &spec.kind {
            RuleKind::Alerting { annotations, .. } => (parse(&spec.labels), parse(annotations)),
            RuleKind::Recording => (Vec::new(), Vec::new()),
        };
        let query_text =
            edgeprom_promql::parse_bounded(&spec.expr, &edgeprom_promql::QueryLimits::default())
                .map_or_else(|_| spec.expr.trim().to_string(), |e| e.to_string());
        Rule {
            spec,
            query_text,
            label_templates,
            annotation_templates,
            health: Health::Unknown,
            last_error: String::new(),
            eval_duration: Duration::ZERO,
            last_eval: None,
            active: HashMap::new(),
            restored: false,
            previous_series: HashSet::new(),
        }
    }

    fn is_alerting(&self) -> bool {
        matches!(self.spec.kind, RuleKind::Alerting { .. })
    }

    /// Identity across reloads, as Prometheus's `nameAndLabels`.
    pub fn identity(&self) -> (String, Vec<(String, String)>) {
        (
            self.spec.name.clone(),
            self.spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Takes over the state of the same rule from before a reload.
    pub fn copy_state(&mut self, old: &mut Rule) {
        self.health = old.health;
        self.last_error = std::mem::take(&mut old.last_error);
        self.eval_duration = old.eval_duration;
        self.last_eval = old.last_eval;
        self.active = std::mem::take(&mut old.active);
        self.restored = old.restored;
        self.previous_series = std::mem::take(&mut old.previous_series);
    }

    fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }
}

/// A rule group: its rules and when it last ran.
pub(crate) struct Group {
    pub spec: GroupSpec,
    pub interval: Duration,
    pub query_offset: Duration,
    pub rules: Vec<Rule>,
    pub last_eval: Option<SystemTime>,
    pub eval_duration: Duration,
    /// Restore `for` state from ALERTS_FOR_STATE after the first evaluation (groups loaded at
    /// start, not those added by a reload).
    pub should_restore: bool,
}

fn query_vector(
    ctx: &EvalContext,
    storage: &Storage,
    expr: &str,
    ts: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    let res = ctx
        .engine
        .instant_query(storage, expr, ts)
        .map_err(|e| e.to_string())?;
    match res.value {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar(_, v) => Ok(vec![(Labels::new(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

impl Group {
    pub fn new(spec: GroupSpec, interval: Duration, query_offset: Duration) -> Group {
        let rules = spec.rules.iter().cloned().map(Rule::new).collect();
        Group {
            spec,
            interval,
            query_offset,
            rules,
            last_eval: None,
            eval_duration: Duration::ZERO,
            should_restore: true,
        }
    }

    /// `file;name`, Prometheus's `rule_group` label value.
    pub fn key(&self) -> String {
        format!("{};{}", self.spec.file.display(), self.spec.name)
    }

    /// Evaluates every rule at `ts` (ms), writes the results in one commit, and returns the
    /// alerts due for sending.
    pub fn eval(
        &mut self,
        ts: i64,
        ctx: &EvalContext,
        storage: &Storage,
        metrics: &RuleMetrics,
    ) -> Vec<NotifyAlert> {
        let started = Instant::now();
        let key = self.key();
        let qts = ts - self.query_offset.as_millis() as i64;
        let limit = self.spec.limit as usize;
        let mut app = Appendable::appender(storage);
        let mut to_send = Vec::new();
        for rule in &mut self.rules {
            let rule_started = Instant::now();
            metrics.evaluation(&key);
            let result = if rule.is_alerting() {
                eval_alerting(rule, ts, qts, limit, ctx, storage)
            } else {
                eval_recording(rule, qts, limit, ctx, storage)
            };
            rule.last_eval = Some(SystemTime::now());
            let samples = match result {
                Ok(s) => {
                    rule.health = Health::Ok;
                    rule.last_error.clear();
                    s
                }
                Err(e) => {
                    tracing::warn!(group = %self.spec.name, rule = %rule.spec.name, error = %e, "rule evaluation failed");
                    rule.health = Health::Err;
                    rule.last_error = e;
                    rule.eval_duration = rule_started.elapsed();
                    metrics.failure(&key);
                    // As Prometheus: a failed evaluation writes nothing and ends no series, so
                    // one failed query does not break every recorded series with a stale marker.
                    continue;
                }
            };
            let mut current = HashSet::with_capacity(samples.len());
            for (labels, t, v) in samples {
                match app.append(None, &labels, t, v) {
                    Ok(_) => {}
                    Err(e) if e.is_per_sample() => {
                        tracing::debug!(rule = %rule.spec.name, series = %labels, error = %e, "rule sample dropped")
                    }
                    Err(e) => {
                        tracing::warn!(rule = %rule.spec.name, error = %e, "appending rule result")
                    }
                }
                current.insert(labels);
            }
            // A series the rule wrote last time and not now is ended with a stale marker.
            for gone in rule.previous_series.difference(&current) {
                let _ = app.append(None, gone, qts, stale_nan());
            }
            rule.previous_series = current;
            rule.eval_duration = rule_started.elapsed();
            if rule.is_alerting() {
                to_send.extend(alerts_to_send(rule, ts, self.interval, ctx));
            }
        }
        if let Err(e) = app.commit() {
            tracing::error!(group = %self.spec.name, error = %e, "committing rule results");
        }
        if self.should_restore {
            self.should_restore = false;
            self.restore_for_state(ts, ctx, storage);
        }
        self.eval_duration = started.elapsed();
        self.last_eval = Some(SystemTime::now());
        metrics.last_duration(&key, self.eval_duration.as_secs_f64());
        to_send
    }

    /// Prometheus's `RestoreForState`: an alert that was pending or firing before a restart gets
    /// its `activeAt` back from its last ALERTS_FOR_STATE sample, shifted by the downtime, so
    /// `for` goes on instead of starting over.
    fn restore_for_state(&mut self, ts: i64, ctx: &EvalContext, storage: &Storage) {
        let mint = ts - ctx.outage_tolerance.as_millis() as i64;
        let grace = ctx.grace_period.as_millis() as i64;
        for rule in &mut self.rules {
            let RuleKind::Alerting { hold, .. } = &rule.spec.kind else {
                continue;
            };
            let hold = hold.as_millis() as i64;
            rule.restored = true;
            if hold < grace || rule.active.is_empty() {
                continue;
            }
            let matchers = [
                Matcher::new(MatchType::Equal, names::METRIC_NAME, "ALERTS_FOR_STATE"),
                Matcher::new(MatchType::Equal, "alertname", &rule.spec.name),
            ];
            let Ok(matchers) = matchers.into_iter().collect::<Result<Vec<_>, _>>() else {
                continue;
            };
            let mut last: HashMap<Labels, (i64, f64)> = HashMap::new();
            for s in storage.select(&matchers, mint, ts) {
                let mut b = s.labels.to_builder();
                b.del(names::METRIC_NAME);
                if let Some(sample) = s.samples().filter(|(t, _)| *t <= ts).last() {
                    last.insert(b.build(), sample);
                }
            }
            for alert in rule.active.values_mut() {
                let Some(&(t, v)) = last.get(&alert.labels) else {
                    continue;
                };
                if edgeprom_model::is_stale_nan(v) {
                    continue;
                }
                let down_at = t / 1000 * 1000;
                let mut restored = (v as i64) * 1000;
                let remaining = hold - (down_at - restored);
                if remaining <= 0 {
                    // It was firing when we went down; the next evaluation fires it again.
                } else if remaining < grace {
                    restored = ts + grace - hold;
                } else {
                    restored += ts - down_at;
                }
                alert.active_at = restored;
            }
        }
    }

    /// The group as the API shows it.
    pub fn status(&self) -> GroupStatus {
        GroupStatus {
            name: self.spec.name.clone(),
            file: self.spec.file.display().to_string(),
            interval_secs: self.interval.as_secs_f64(),
            limit: self.spec.limit,
            evaluation_time: self.eval_duration.as_secs_f64(),
            last_evaluation: self.last_eval,
            rules: self.rules.iter().map(rule_status).collect(),
        }
    }
}

fn to_time(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn rule_status(r: &Rule) -> RuleStatus {
    let labels = Labels::from_pairs(r.spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let alerting = match &r.spec.kind {
        RuleKind::Recording => None,
        RuleKind::Alerting {
            hold,
            keep_firing_for,
            annotations,
        } => {
            let mut alerts: Vec<AlertStatus> = r
                .active
                .values()
                .filter(|a| a.state != AlertState::Inactive)
                .map(|a| AlertStatus {
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    state: a.state.as_str(),
                    active_at: to_time(a.active_at),
                    keep_firing_since: a.keep_firing_since.map(to_time),
                    value: gofmt::format_e_shortest(a.value),
                })
                .collect();
            alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
            Some(AlertingStatus {
                duration_secs: hold.as_std().as_secs_f64(),
                keep_firing_for_secs: keep_firing_for.as_std().as_secs_f64(),
                annotations: Labels::from_pairs(
                    annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                ),
                state: r.state().as_str(),
                alerts,
            })
        }
    };
    RuleStatus {
        name: r.spec.name.clone(),
        query: r.query_text.clone(),
        labels,
        health: r.health,
        last_error: r.last_error.clone(),
        evaluation_time: r.eval_duration.as_secs_f64(),
        last_evaluation: r.last_eval,
        alerting,
    }
}

type Samples = Vec<(Labels, i64, f64)>;

fn eval_recording(
    rule: &mut Rule,
    qts: i64,
    limit: usize,
    ctx: &EvalContext,
    storage: &Storage,
) -> Result<Samples, String> {
    let vector = query_vector(ctx, storage, &rule.spec.expr, qts)?;
    let mut out = Vec::with_capacity(vector.len());
    let mut seen = HashSet::with_capacity(vector.len());
    for (labels, v) in vector {
        let mut b = labels.to_builder();
        b.set(names::METRIC_NAME, rule.spec.name.as_str());
        for (k, val) in &rule.spec.labels {
            b.set(k.as_str(), val.as_str());
        }
        let l = b.build();
        if !seen.insert(l.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, qts, v));
    }
    if limit > 0 && out.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        ));
    }
    Ok(out)
}

fn eval_alerting(
    rule: &mut Rule,
    ts: i64,
    qts: i64,
    limit: usize,
    ctx: &EvalContext,
    storage: &Storage,
) -> Result<Samples, String> {
    let RuleKind::Alerting {
        hold,
        keep_firing_for,
        ..
    } = &rule.spec.kind
    else {
        return Ok(Vec::new());
    };
    let hold = hold.as_millis() as i64;
    let keep_firing_for = keep_firing_for.as_millis() as i64;
    let vector = query_vector(ctx, storage, &rule.spec.expr, qts)?;
    let mut in_result: HashSet<Labels> = HashSet::with_capacity(vector.len());
    for (labels, v) in vector {
        let data = template::alert_data(&labels, v, &ctx.external_labels, &ctx.external_url);
        let expand = |t: &Template| match t.execute(&data) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(rule = %rule.spec.name, error = %e, "expanding alert template failed");
                format!("<error expanding template: {e}>")
            }
        };
        let mut b: LabelsBuilder = labels.to_builder();
        b.del(names::METRIC_NAME);
        for (k, t) in &rule.label_templates {
            b.set(k.as_str(), expand(t));
        }
        b.set("alertname", rule.spec.name.as_str());
        let alert_labels = b.build();
        let annotations = Labels::from_pairs(
            rule.annotation_templates
                .iter()
                .map(|(k, t)| (k.clone(), expand(t))),
        );
        if !in_result.insert(alert_labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
        if let Some(a) = rule.active.get_mut(&alert_labels)
            && a.state != AlertState::Inactive
        {
            a.value = v;
            a.annotations = annotations;
            continue;
        }
        rule.active.insert(
            alert_labels.clone(),
            Alert {
                labels: alert_labels,
                annotations,
                value: v,
                state: AlertState::Pending,
                active_at: ts,
                fired_at: None,
                resolved_at: None,
                last_sent_at: None,
                valid_until: 0,
                keep_firing_since: None,
            },
        );
    }

    let mut out = Vec::new();
    let mut active_pending = 0;
    let mut remove = Vec::new();
    for (key, a) in rule.active.iter_mut() {
        if !in_result.contains(key) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && keep_firing_for > 0 {
                let since = *a.keep_firing_since.get_or_insert(ts);
                keep_firing = ts - since < keep_firing_for;
            }
            // A resolved alert stays for a while so that it is reported resolved.
            if a.state == AlertState::Pending
                || a.resolved_at
                    .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
            {
                remove.push(key.clone());
            }
            if a.state != AlertState::Inactive && !keep_firing {
                a.state = AlertState::Inactive;
                a.resolved_at = Some(ts);
            }
            if !keep_firing {
                continue;
            }
        } else {
            a.keep_firing_since = None;
        }
        active_pending += 1;
        if a.state == AlertState::Pending && ts - a.active_at >= hold {
            a.state = AlertState::Firing;
            a.fired_at = Some(ts);
        }
        if rule.restored {
            let mut b = a.labels.to_builder();
            b.set(names::METRIC_NAME, "ALERTS");
            b.set("alertstate", a.state.as_str());
            out.push((b.build(), qts, 1.0));
            let mut b = a.labels.to_builder();
            b.set(names::METRIC_NAME, "ALERTS_FOR_STATE");
            out.push((b.build(), qts, (a.active_at / 1000) as f64));
        }
    }
    for k in remove {
        rule.active.remove(&k);
    }
    if limit > 0 && active_pending > limit {
        rule.active.clear();
        return Err(format!(
            "exceeded limit of {limit} with {active_pending} alerts"
        ));
    }
    Ok(out)
}

/// Prometheus's `sendAlerts`: firing alerts every `resend_delay`, resolved ones once more, each
/// valid for four evaluation or resend intervals.
fn alerts_to_send(
    rule: &mut Rule,
    ts: i64,
    interval: Duration,
    ctx: &EvalContext,
) -> Vec<NotifyAlert> {
    let resend = ctx.resend_delay.as_millis() as i64;
    let delta = resend.max(interval.as_millis() as i64);
    let generator_url = format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        ctx.external_url.trim_end_matches('/'),
        form_urlencoded::byte_serialize(rule.spec.expr.as_bytes()).collect::<String>()
    );
    let mut out = Vec::new();
    for a in rule.active.values_mut() {
        if !a.needs_sending(ts, resend) {
            continue;
        }
        a.last_sent_at = Some(ts);
        a.valid_until = ts + 4 * delta;
        out.push(NotifyAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at.unwrap_or(a.active_at),
            ends_at: a.resolved_at.unwrap_or(a.valid_until),
            generator_url: generator_url.clone(),
        });
    }
    out
}

/// Writes stale markers for every series a group wrote last, when the group goes away.
pub(crate) fn mark_stale(group: &mut Group, storage: &Storage, ts: i64) {
    let mut app = Appendable::appender(storage);
    for rule in &mut group.rules {
        for s in rule.previous_series.drain() {
            let _ = app.append(None, &s, ts, stale_nan());
        }
    }
    if let Err(e) = app.commit() {
        tracing::warn!(group = %group.spec.name, error = %e, "writing stale markers of a removed group");
    }
}
