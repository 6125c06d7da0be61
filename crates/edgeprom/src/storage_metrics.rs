//! The storage engine's self-metrics, read from its counters at each scrape of `/metrics` and
//! named as Prometheus names the same TSDB metrics.

use std::sync::Arc;

use edgeprom_storage::Storage;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads [`Storage::stats`] when `/metrics` is rendered.
pub struct StorageCollector(pub Arc<Storage>);

impl std::fmt::Debug for StorageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StorageCollector")
            .field(&self.0.dir())
            .finish()
    }
}

impl Collector for StorageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let gauges = [
            (
                "prometheus_tsdb_head_series",
                "Total number of series in the head block.",
                s.head_series as i64,
            ),
            (
                "prometheus_tsdb_head_min_time",
                "Minimum time bound of the head block (ms).",
                s.min_time,
            ),
            (
                "prometheus_tsdb_head_max_time",
                "Maximum timestamp of the head block (ms).",
                s.max_time,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters = [
            (
                "prometheus_tsdb_head_samples_appended",
                "Total number of appended samples.",
                s.samples_appended,
            ),
            (
                "prometheus_tsdb_out_of_order_samples",
                "Total number of out of order samples ingestion failed attempts.",
                s.out_of_order,
            ),
            (
                "edgeprom_tsdb_duplicate_samples",
                "Total number of samples refused for a different value at an existing timestamp.",
                s.duplicates,
            ),
            (
                "prometheus_tsdb_head_chunks_created",
                "Total number of chunks created in the head.",
                s.chunks_created,
            ),
            (
                "prometheus_tsdb_wal_writes_failed",
                "Total number of WAL writes that failed (the commit was refused).",
                s.wal_failures,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}
