//! Self-metrics with Prometheus's names: rule evaluations and notifications.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type GroupLabel = Vec<(String, String)>;

/// `prometheus_rule_*` metrics, labelled `rule_group="FILE;NAME"` as in Prometheus.
#[derive(Clone, Default)]
pub struct RuleMetrics {
    evaluations: Family<GroupLabel, Counter>,
    failures: Family<GroupLabel, Counter>,
    last_duration: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    interval: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    rules: Family<GroupLabel, Gauge>,
}

fn group(key: &str) -> GroupLabel {
    vec![("rule_group".into(), key.into())]
}

impl RuleMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> RuleMetrics {
        let m = RuleMetrics::default();
        registry.register(
            "prometheus_rule_evaluations",
            "The total number of rule evaluations",
            m.evaluations.clone(),
        );
        registry.register(
            "prometheus_rule_evaluation_failures",
            "The total number of rule evaluation failures",
            m.failures.clone(),
        );
        registry.register(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation",
            m.last_duration.clone(),
        );
        registry.register(
            "prometheus_rule_group_interval_seconds",
            "The interval of a rule group",
            m.interval.clone(),
        );
        registry.register(
            "prometheus_rule_group_rules",
            "The number of rules",
            m.rules.clone(),
        );
        m
    }

    pub(crate) fn evaluation(&self, key: &str) {
        self.evaluations.get_or_create(&group(key)).inc();
    }

    pub(crate) fn failure(&self, key: &str) {
        self.failures.get_or_create(&group(key)).inc();
    }

    pub(crate) fn last_duration(&self, key: &str, secs: f64) {
        self.last_duration.get_or_create(&group(key)).set(secs);
    }

    pub(crate) fn group_loaded(&self, key: &str, interval_secs: f64, rules: usize) {
        self.interval.get_or_create(&group(key)).set(interval_secs);
        self.rules.get_or_create(&group(key)).set(rules as i64);
        // Counters exist from the start, so a rate over them works before the first failure.
        let _ = self.evaluations.get_or_create(&group(key));
        let _ = self.failures.get_or_create(&group(key));
    }

    pub(crate) fn group_removed(&self, key: &str) {
        let g = group(key);
        self.evaluations.remove(&g);
        self.failures.remove(&g);
        self.last_duration.remove(&g);
        self.interval.remove(&g);
        self.rules.remove(&g);
    }
}

/// `prometheus_notifications_*` metrics.
#[derive(Clone, Default)]
pub struct NotifierMetrics {
    pub(crate) sent: Family<Vec<(String, String)>, Counter>,
    pub(crate) errors: Family<Vec<(String, String)>, Counter>,
    pub(crate) dropped: Counter,
    pub(crate) queue_length: Gauge,
    pub(crate) queue_capacity: Gauge,
    pub(crate) alertmanagers: Gauge,
    pub(crate) latency: Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>,
}

impl NotifierMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> NotifierMetrics {
        let m = NotifierMetrics::default();
        registry.register(
            "prometheus_notifications_sent",
            "Total number of alerts sent",
            m.sent.clone(),
        );
        registry.register(
            "prometheus_notifications_errors",
            "Total number of sent alerts affected by errors",
            m.errors.clone(),
        );
        registry.register(
            "prometheus_notifications_dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager",
            m.dropped.clone(),
        );
        registry.register(
            "prometheus_notifications_queue_length",
            "The number of alert notifications in the queue",
            m.queue_length.clone(),
        );
        registry.register(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue",
            m.queue_capacity.clone(),
        );
        registry.register(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active",
            m.alertmanagers.clone(),
        );
        registry.register(
            "prometheus_notifications_last_latency_seconds",
            "Latency of the last send to each Alertmanager (edgeprom keeps the last value, not a summary)",
            m.latency.clone(),
        );
        m
    }
}
