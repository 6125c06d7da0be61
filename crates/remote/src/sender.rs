//! Every configured `remote_write` queue, started, kept, replaced or stopped as the configuration
//! changes.

use std::sync::Arc;
use std::time::Duration;

use edgeprom_config::RemoteWriteConfig;
use edgeprom_model::Labels;
use edgeprom_storage::Storage;

use crate::client::RemoteWriteClient;
use crate::metrics::RemoteMetrics;
use crate::queue::{MetadataSource, Queue, QueueError};

/// The remote-write side of the binary: one [`Queue`] per `remote_write` entry.
pub struct RemoteWrite {
    storage: Arc<Storage>,
    metrics: RemoteMetrics,
    flush_deadline: Duration,
    metadata: Option<Arc<dyn MetadataSource>>,
    queues: tokio::sync::Mutex<Vec<(Labels, Queue)>>,
}

impl RemoteWrite {
    /// No queues yet; [`RemoteWrite::apply_config`] starts them. `flush_deadline` bounds how long
    /// a stopping queue keeps sending what it holds (`--storage.remote.flush-deadline`);
    /// `metadata` is where metric metadata for `metadata_config` comes from.
    pub fn new(
        storage: Arc<Storage>,
        metrics: RemoteMetrics,
        flush_deadline: Duration,
        metadata: Option<Arc<dyn MetadataSource>>,
    ) -> Self {
        RemoteWrite {
            storage,
            metrics,
            flush_deadline,
            metadata,
            queues: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Makes the running queues match `configs`: an unchanged queue keeps running (and its
    /// buffered samples), a changed one is stopped and started again from where it stopped, a
    /// removed one is stopped. Nothing changes if any new queue's client cannot be built.
    pub async fn apply_config(
        &self,
        configs: &[RemoteWriteConfig],
        external_labels: &Labels,
    ) -> Result<(), QueueError> {
        for cfg in configs {
            RemoteWriteClient::new(cfg).map_err(|source| QueueError::Client {
                name: cfg.name.clone(),
                source,
            })?;
        }
        let mut queues = self.queues.lock().await;
        let mut keep = Vec::new();
        let mut stop = Vec::new();
        for (ext, q) in queues.drain(..) {
            if &ext == external_labels && configs.contains(q.config()) {
                keep.push((ext, q));
            } else {
                stop.push(q);
            }
        }
        for q in stop {
            let metrics = self.metrics.queue(&q.config().name, &q.config().url);
            let name = q.config().name.clone();
            q.stop().await;
            if !configs.iter().any(|c| c.name == name) {
                self.storage.hold_wal(&name, None);
                self.metrics.remove(&metrics);
            }
        }
        for cfg in configs {
            if keep.iter().any(|(_, q)| q.config() == cfg) {
                continue;
            }
            let q = Queue::start(
                cfg.clone(),
                external_labels.clone(),
                self.storage.clone(),
                self.metrics.queue(&cfg.name, &cfg.url),
                self.metadata.clone(),
                self.flush_deadline,
                tokio::runtime::Handle::current(),
            )?;
            keep.push((external_labels.clone(), q));
        }
        *queues = keep;
        Ok(())
    }

    /// Stops every queue, each sending what it holds for at most the flush deadline.
    pub async fn stop(&self) {
        let queues: Vec<_> = self.queues.lock().await.drain(..).collect();
        for (_, q) in queues {
            q.stop().await;
        }
    }
}
