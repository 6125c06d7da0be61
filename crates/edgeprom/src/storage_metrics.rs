//! The storage engine's self-metrics, read from its counters at each scrape of `/metrics` and
//! named as Prometheus names the same TSDB metrics.

use std::sync::Arc;

use edgeprom_scrape::ExemplarStorage;
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
            (
                "edgeprom_tsdb_head_chunk_writes_failed",
                "Total number of full head chunks that could not be written to disk (kept in memory and retried).",
                s.chunk_write_failures,
            ),
            (
                "prometheus_tsdb_compactions_failed",
                "Total number of compactions that failed for the partition.",
                s.compactions_failed,
            ),
            (
                "prometheus_tsdb_checkpoint_creations_failed",
                "Total number of checkpoint creations that failed.",
                s.checkpoints_failed,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}

/// Reads [`ExemplarStorage::stats`] when `/metrics` is rendered, under Prometheus's
/// `prometheus_tsdb_exemplar_*` names.
#[derive(Debug)]
pub struct ExemplarCollector(pub Arc<ExemplarStorage>);

impl Collector for ExemplarCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.stats();
        let gauges = [
            (
                "prometheus_tsdb_exemplar_max_exemplars",
                "Total number of exemplars the exemplar storage can store, resizeable.",
                s.max_exemplars as f64,
            ),
            (
                "prometheus_tsdb_exemplar_exemplars_in_storage",
                "Number of exemplars currently in circular storage.",
                s.exemplars_in_storage as f64,
            ),
            (
                "prometheus_tsdb_exemplar_series_with_exemplars_in_storage",
                "Number of series with exemplars currently in circular storage.",
                s.series_with_exemplars as f64,
            ),
            (
                "prometheus_tsdb_exemplar_last_exemplars_timestamp_seconds",
                "The timestamp of the newest exemplar stored in circular storage.",
                s.last_ts as f64 / 1000.0,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let counters = [
            (
                "prometheus_tsdb_exemplar_exemplars_appended",
                "Total number of appended exemplars.",
                s.appended_total,
            ),
            (
                "prometheus_tsdb_exemplar_out_of_order_exemplars",
                "Total number of out of order exemplar ingestion failed attempts.",
                s.out_of_order_total,
            ),
        ];
        for (name, help, v) in counters {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        Ok(())
    }
}
