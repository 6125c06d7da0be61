//! What the HTTP API reads of rule evaluation: a read-only view the rules manager implements, so
//! the API needs no dependency on the rules crate.

use std::time::SystemTime;

use crate::Labels;

/// A rule evaluator as the API sees it: `/api/v1/rules`, `/api/v1/alerts`,
/// `/api/v1/alertmanagers`.
pub trait RulesView: Send + Sync {
    /// Every rule group, in file order then group order.
    fn groups(&self) -> Vec<GroupStatus>;
    /// The URLs alerts are sent to.
    fn alertmanagers(&self) -> Vec<String>;
}

/// One rule group's state.
#[derive(Debug, Clone)]
pub struct GroupStatus {
    /// The group name.
    pub name: String,
    /// The rule file it came from.
    pub file: String,
    /// Evaluation interval in seconds.
    pub interval_secs: f64,
    /// `limit` (0: none).
    pub limit: u64,
    /// How long the last evaluation of the whole group took, in seconds.
    pub evaluation_time: f64,
    /// When the group was last evaluated; `None` before the first evaluation.
    pub last_evaluation: Option<SystemTime>,
    /// The rules, in file order.
    pub rules: Vec<RuleStatus>,
}

/// Whether a rule's last evaluation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

impl Health {
    /// Prometheus's spelling: `unknown`, `ok`, `err`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// One rule's state.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    /// The recorded metric name or the alert name.
    pub name: String,
    /// The expression as written.
    pub query: String,
    /// `labels` of the rule (unexpanded templates).
    pub labels: Labels,
    /// Health of the last evaluation.
    pub health: Health,
    /// The last evaluation's error, empty when it succeeded.
    pub last_error: String,
    /// How long the last evaluation took, in seconds.
    pub evaluation_time: f64,
    /// When the rule was last evaluated.
    pub last_evaluation: Option<SystemTime>,
    /// `None` for recording rules.
    pub alerting: Option<AlertingStatus>,
}

/// The alerting part of a rule's state.
#[derive(Debug, Clone)]
pub struct AlertingStatus {
    /// `for`, in seconds.
    pub duration_secs: f64,
    /// `keep_firing_for`, in seconds.
    pub keep_firing_for_secs: f64,
    /// `annotations` of the rule (unexpanded templates).
    pub annotations: Labels,
    /// The highest state of its alerts: `inactive`, `pending` or `firing`.
    pub state: &'static str,
    /// Its pending and firing alerts.
    pub alerts: Vec<AlertStatus>,
}

/// One pending or firing alert.
#[derive(Debug, Clone)]
pub struct AlertStatus {
    /// The alert's labels (with `alertname`).
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Labels,
    /// `pending` or `firing`.
    pub state: &'static str,
    /// When the condition started holding.
    pub active_at: SystemTime,
    /// Since when the alert is kept firing by `keep_firing_for`.
    pub keep_firing_since: Option<SystemTime>,
    /// The value of the last evaluation, formatted as Prometheus formats it (`%e`, shortest).
    pub value: String,
}
