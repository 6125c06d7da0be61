//! The sender's self-metrics, named and labelled as Prometheus's `prometheus_remote_storage_*`
//! so that existing dashboards and alerts (e.g. "remote write behind") work unchanged.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of every per-queue metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabels {
    pub remote_name: String,
    pub url: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of every remote-write queue.
#[derive(Clone)]
pub struct RemoteMetrics {
    samples: Family<QueueLabels, Counter>,
    samples_failed: Family<QueueLabels, Counter>,
    samples_retried: Family<QueueLabels, Counter>,
    samples_dropped: Family<QueueLabels, Counter>,
    samples_pending: Family<QueueLabels, Gauge>,
    metadata: Family<QueueLabels, Counter>,
    metadata_failed: Family<QueueLabels, Counter>,
    bytes: Family<QueueLabels, Counter>,
    highest_sent: Family<QueueLabels, FloatGauge>,
    shards: Family<QueueLabels, Gauge>,
    shards_desired: Family<QueueLabels, FloatGauge>,
    shards_min: Family<QueueLabels, Gauge>,
    shards_max: Family<QueueLabels, Gauge>,
    shard_capacity: Family<QueueLabels, Gauge>,
    batch_duration: Family<QueueLabels, Histogram>,
    wal_skipped_segments: Family<QueueLabels, Counter>,
    wal_segment: Family<QueueLabels, Gauge>,
    pub(crate) highest_in: FloatGauge,
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl RemoteMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> RemoteMetrics {
        let m = RemoteMetrics {
            samples: Family::default(),
            samples_failed: Family::default(),
            samples_retried: Family::default(),
            samples_dropped: Family::default(),
            samples_pending: Family::default(),
            metadata: Family::default(),
            metadata_failed: Family::default(),
            bytes: Family::default(),
            highest_sent: Family::default(),
            shards: Family::default(),
            shards_desired: Family::default(),
            shards_min: Family::default(),
            shards_max: Family::default(),
            shard_capacity: Family::default(),
            batch_duration: Family::new_with_constructor(batch_histogram),
            wal_skipped_segments: Family::default(),
            wal_segment: Family::default(),
            highest_in: FloatGauge::default(),
        };
        let r = registry.sub_registry_with_prefix("prometheus_remote_storage");
        // prometheus-client appends `_total` to counters when it renders them.
        r.register(
            "samples",
            "Total number of samples sent to remote storage.",
            m.samples.clone(),
        );
        r.register(
            "samples_failed",
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
            m.samples_failed.clone(),
        );
        r.register(
            "samples_retried",
            "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
            m.samples_retried.clone(),
        );
        r.register(
            "samples_dropped",
            "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.",
            m.samples_dropped.clone(),
        );
        r.register(
            "samples_pending",
            "The number of samples pending in the queues shards to be sent to the remote storage.",
            m.samples_pending.clone(),
        );
        r.register(
            "metadata",
            "Total number of metadata entries sent to remote storage.",
            m.metadata.clone(),
        );
        r.register(
            "metadata_failed",
            "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.",
            m.metadata_failed.clone(),
        );
        r.register(
            "bytes",
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
            m.bytes.clone(),
        );
        r.register(
            "queue_highest_sent_timestamp_seconds",
            "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
            m.highest_sent.clone(),
        );
        r.register(
            "shards",
            "The number of shards used for parallel sending to the remote storage.",
            m.shards.clone(),
        );
        r.register(
            "shards_desired",
            "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
            m.shards_desired.clone(),
        );
        r.register(
            "shards_min",
            "The minimum number of shards that the queue is allowed to run.",
            m.shards_min.clone(),
        );
        r.register(
            "shards_max",
            "The maximum number of shards that the queue is allowed to run.",
            m.shards_max.clone(),
        );
        r.register(
            "shard_capacity",
            "The capacity of each shard of the queue used for parallel sending to the remote storage.",
            m.shard_capacity.clone(),
        );
        r.register(
            "sent_batch_duration_seconds",
            "Duration of send calls to the remote storage.",
            m.batch_duration.clone(),
        );
        r.register(
            "highest_timestamp_in_seconds",
            "Highest timestamp that has come into the remote storage via the WAL, in seconds since epoch.",
            m.highest_in.clone(),
        );
        registry.register(
            "edgeprom_remote_storage_wal_segments_skipped",
            "WAL segments removed before the queue read them (the WAL kept for it exceeded --storage.remote.wal-max-hold-size).",
            m.wal_skipped_segments.clone(),
        );
        registry.register(
            "prometheus_wal_watcher_current_segment",
            "Current segment the WAL watcher is reading records from.",
            m.wal_segment.clone(),
        );
        m
    }

    /// The metrics of one queue.
    pub(crate) fn queue(&self, remote_name: &str, url: &str) -> QueueMetrics {
        let l = QueueLabels {
            remote_name: remote_name.to_string(),
            url: url.to_string(),
        };
        QueueMetrics {
            samples: self.samples.get_or_create(&l).clone(),
            samples_failed: self.samples_failed.get_or_create(&l).clone(),
            samples_retried: self.samples_retried.get_or_create(&l).clone(),
            samples_dropped: self.samples_dropped.get_or_create(&l).clone(),
            samples_pending: self.samples_pending.get_or_create(&l).clone(),
            metadata: self.metadata.get_or_create(&l).clone(),
            metadata_failed: self.metadata_failed.get_or_create(&l).clone(),
            bytes: self.bytes.get_or_create(&l).clone(),
            highest_sent: self.highest_sent.get_or_create(&l).clone(),
            shards: self.shards.get_or_create(&l).clone(),
            shards_desired: self.shards_desired.get_or_create(&l).clone(),
            shards_min: self.shards_min.get_or_create(&l).clone(),
            shards_max: self.shards_max.get_or_create(&l).clone(),
            shard_capacity: self.shard_capacity.get_or_create(&l).clone(),
            batch_duration: self.batch_duration.get_or_create(&l).clone(),
            wal_skipped_segments: self.wal_skipped_segments.get_or_create(&l).clone(),
            wal_segment: self.wal_segment.get_or_create(&l).clone(),
            highest_in: self.highest_in.clone(),
            labels: l,
        }
    }

    /// Forgets a queue that no longer exists, as Prometheus does on reload.
    pub(crate) fn remove(&self, q: &QueueMetrics) {
        let l = &q.labels;
        self.samples.remove(l);
        self.samples_failed.remove(l);
        self.samples_retried.remove(l);
        self.samples_dropped.remove(l);
        self.samples_pending.remove(l);
        self.metadata.remove(l);
        self.metadata_failed.remove(l);
        self.bytes.remove(l);
        self.highest_sent.remove(l);
        self.shards.remove(l);
        self.shards_desired.remove(l);
        self.shards_min.remove(l);
        self.shards_max.remove(l);
        self.shard_capacity.remove(l);
        self.batch_duration.remove(l);
        self.wal_skipped_segments.remove(l);
        self.wal_segment.remove(l);
    }
}

/// One queue's handles into [`RemoteMetrics`].
#[derive(Clone)]
pub(crate) struct QueueMetrics {
    labels: QueueLabels,
    pub samples: Counter,
    pub samples_failed: Counter,
    pub samples_retried: Counter,
    pub samples_dropped: Counter,
    pub samples_pending: Gauge,
    pub metadata: Counter,
    pub metadata_failed: Counter,
    pub bytes: Counter,
    pub highest_sent: FloatGauge,
    pub shards: Gauge,
    pub shards_desired: FloatGauge,
    pub shards_min: Gauge,
    pub shards_max: Gauge,
    pub shard_capacity: Gauge,
    pub batch_duration: Histogram,
    pub wal_skipped_segments: Counter,
    pub wal_segment: Gauge,
    pub highest_in: FloatGauge,
}
