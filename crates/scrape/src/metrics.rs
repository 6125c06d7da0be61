//! The scrape subsystem's self-metrics, named as Prometheus names them where the meaning is the same.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of per-interval metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IntervalLabels {
    pub interval: String,
}

/// Labels of per-job metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobLabels {
    pub scrape_job: String,
}

/// Labels of per-target metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabels {
    pub job: String,
    pub instance: String,
}

/// Every metric the scrape manager and its loops update.
pub struct ScrapeMetrics {
    pub(crate) interval_length: Family<IntervalLabels, Histogram>,
    pub(crate) exceeded_sample_limit: Counter,
    pub(crate) exceeded_body_size_limit: Counter,
    pub(crate) exceeded_label_limits: Counter,
    pub(crate) sample_out_of_order: Counter,
    pub(crate) sample_duplicate_timestamp: Counter,
    pub(crate) sample_out_of_bounds: Counter,
    pub(crate) exemplar_out_of_order: Counter,
    pub(crate) pool_targets: Family<JobLabels, Gauge>,
    pub(crate) pool_exceeded_target_limit: Counter,
    pub(crate) pools: Gauge,
    pub(crate) target_up: Family<TargetLabels, Gauge>,
    pub(crate) target_scrapes: Family<TargetLabels, Counter>,
    pub(crate) target_scrape_failures: Family<TargetLabels, Counter>,
    pub(crate) target_last_duration: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    pub(crate) target_last_timestamp: Family<TargetLabels, Gauge<f64, AtomicU64>>,
}

fn interval_histogram() -> Histogram {
    // Scrape intervals on the platform run from 1s to 10s; buckets bracket them finely enough to
    // see a late or skipped scrape.
    Histogram::new([
        0.5, 0.9, 0.99, 1.01, 1.1, 1.5, 1.9, 1.99, 2.01, 2.1, 3.0, 4.9, 4.99, 5.01, 5.1, 5.9, 5.99,
        6.01, 6.1, 9.9, 9.99, 10.01, 10.1, 15.0, 30.0, 60.0,
    ])
}

impl ScrapeMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> ScrapeMetrics {
        let m = ScrapeMetrics {
            interval_length: Family::new_with_constructor(interval_histogram),
            exceeded_sample_limit: Counter::default(),
            exceeded_body_size_limit: Counter::default(),
            exceeded_label_limits: Counter::default(),
            sample_out_of_order: Counter::default(),
            sample_duplicate_timestamp: Counter::default(),
            sample_out_of_bounds: Counter::default(),
            exemplar_out_of_order: Counter::default(),
            pool_targets: Family::default(),
            pool_exceeded_target_limit: Counter::default(),
            pools: Gauge::default(),
            target_up: Family::default(),
            target_scrapes: Family::default(),
            target_scrape_failures: Family::default(),
            target_last_duration: Family::default(),
            target_last_timestamp: Family::default(),
        };
        // prometheus-client appends `_total` to counter names when it renders them.
        registry.register(
            "prometheus_target_interval_length_seconds",
            "Actual intervals between scrapes (a histogram here; a summary in Prometheus)",
            m.interval_length.clone(),
        );
        registry.register(
            "prometheus_target_scrapes_exceeded_sample_limit",
            "Total number of scrapes that hit the sample limit and were rejected",
            m.exceeded_sample_limit.clone(),
        );
        registry.register(
            "prometheus_target_scrapes_exceeded_body_size_limit",
            "Total number of scrapes that hit the body size limit",
            m.exceeded_body_size_limit.clone(),
        );
        registry.register(
            "prometheus_target_scrape_pool_exceeded_label_limits",
            "Total number of times scrapes hit the label limits",
            m.exceeded_label_limits.clone(),
        );
        registry.register(
            "prometheus_target_scrapes_sample_out_of_order",
            "Total number of samples rejected due to not being out of the expected order",
            m.sample_out_of_order.clone(),
        );
        registry.register(
            "prometheus_target_scrapes_sample_duplicate_timestamp",
            "Total number of samples rejected due to duplicate timestamps but different values",
            m.sample_duplicate_timestamp.clone(),
        );
        registry.register(
            "prometheus_target_scrapes_sample_out_of_bounds",
            "Total number of samples rejected due to timestamp falling outside of the time bounds",
            m.sample_out_of_bounds.clone(),
        );
        registry.register(
            "prometheus_target_scrapes_exemplar_out_of_order",
            "Total number of exemplar rejected due to not being out of the expected order",
            m.exemplar_out_of_order.clone(),
        );
        registry.register(
            "prometheus_target_scrape_pool_targets",
            "Current number of targets in this scrape pool",
            m.pool_targets.clone(),
        );
        registry.register(
            "prometheus_target_scrape_pool_exceeded_target_limit",
            "Total number of times scrape pools hit the target limit",
            m.pool_exceeded_target_limit.clone(),
        );
        registry.register(
            "prometheus_target_scrape_pools",
            "Current number of scrape pools",
            m.pools.clone(),
        );
        registry.register(
            "edgeprom_target_up",
            "1 if the target's last scrape succeeded, 0 otherwise (the value of its `up` series)",
            m.target_up.clone(),
        );
        registry.register(
            "edgeprom_target_scrapes",
            "Total number of scrapes attempted per target",
            m.target_scrapes.clone(),
        );
        registry.register(
            "edgeprom_target_scrape_failures",
            "Total number of failed scrapes per target",
            m.target_scrape_failures.clone(),
        );
        registry.register(
            "edgeprom_target_last_scrape_duration_seconds",
            "Duration of the target's last scrape",
            m.target_last_duration.clone(),
        );
        registry.register(
            "edgeprom_target_last_scrape_timestamp_seconds",
            "Unix time at which the target's last scrape started",
            m.target_last_timestamp.clone(),
        );
        m
    }

    /// Forgets a target's per-target series once its loop is gone.
    pub(crate) fn remove_target(&self, l: &TargetLabels) {
        self.target_up.remove(l);
        self.target_scrapes.remove(l);
        self.target_scrape_failures.remove(l);
        self.target_last_duration.remove(l);
        self.target_last_timestamp.remove(l);
    }
}
