//! Sends alerts to Alertmanager's `/api/v2/alerts`, as Prometheus's `notifier` does: a bounded
//! queue (oldest alerts dropped when full), batches of at most 256 alerts, every batch to every
//! configured Alertmanager concurrently with its timeout. A failed send is counted and not retried
//! as such: firing alerts are sent again every `resend_delay` by the rules, which is how
//! Prometheus recovers from an Alertmanager that was down. Evaluation only enqueues, so a slow or
//! down Alertmanager never delays it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use edgeprom_config::AlertingConfig;
use edgeprom_model::Labels;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::metrics::NotifierMetrics;

/// Prometheus's `maxBatchSize`.
const MAX_BATCH: usize = 256;

/// One alert as sent to Alertmanager; times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyAlert {
    /// Labels (`alertname` included; external labels are added when sent).
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Labels,
    /// When it started firing.
    pub starts_at: i64,
    /// When it resolved, or until when it is valid without a re-send.
    pub ends_at: i64,
    /// Link back to the expression.
    pub generator_url: String,
}

#[derive(Debug, Clone)]
struct Target {
    url: String,
    timeout: Duration,
}

/// The alert queue and its sender.
pub struct Notifier {
    queue: Mutex<VecDeque<NotifyAlert>>,
    capacity: usize,
    wake: Notify,
    targets: RwLock<Vec<Target>>,
    external_labels: RwLock<Labels>,
    client: reqwest::Client,
    metrics: NotifierMetrics,
}

fn rfc3339(ms: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn labels_json(l: &Labels) -> Value {
    let mut m = Map::new();
    for label in l.iter() {
        m.insert(label.name.clone(), Value::String(label.value.clone()));
    }
    Value::Object(m)
}

impl Notifier {
    /// A notifier whose queue holds at most `capacity` alerts
    /// (`--alertmanager.notification-queue-capacity`).
    pub fn new(capacity: usize, metrics: NotifierMetrics) -> Arc<Notifier> {
        metrics.queue_capacity.set(capacity as i64);
        Arc::new(Notifier {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake: Notify::new(),
            targets: RwLock::new(Vec::new()),
            external_labels: RwLock::new(Labels::new()),
            client: reqwest::Client::new(),
            metrics,
        })
    }

    /// Takes the Alertmanagers of `alerting` and the external labels added to every alert.
    pub fn apply_config(&self, alerting: &AlertingConfig, external_labels: &Labels) {
        let targets: Vec<Target> = alerting
            .alertmanagers
            .iter()
            .flat_map(|am| {
                am.targets.iter().map(|t| Target {
                    url: am.alerts_url(t),
                    timeout: am.timeout.as_std(),
                })
            })
            .collect();
        self.metrics.alertmanagers.set(targets.len() as i64);
        *self.targets.write().unwrap_or_else(|e| e.into_inner()) = targets;
        *self
            .external_labels
            .write()
            .unwrap_or_else(|e| e.into_inner()) = external_labels.clone();
    }

    /// The URLs alerts go to.
    pub fn alertmanager_urls(&self) -> Vec<String> {
        self.targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|t| t.url.clone())
            .collect()
    }

    /// Queues alerts for sending; never blocks. When the queue is full the oldest are dropped and
    /// counted in `prometheus_notifications_dropped_total`.
    pub fn send(&self, alerts: Vec<NotifyAlert>) {
        if alerts.is_empty() || self.targets.read().map_or(true, |t| t.is_empty()) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.extend(alerts);
        let over = q.len().saturating_sub(self.capacity);
        if over > 0 {
            q.drain(..over);
            self.metrics.dropped.inc_by(over as u64);
            tracing::warn!(
                dropped = over,
                "alert notification queue full, dropping alerts"
            );
        }
        self.metrics.queue_length.set(q.len() as i64);
        drop(q);
        self.wake.notify_one();
    }

    fn next_batch(&self) -> Vec<NotifyAlert> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let n = q.len().min(MAX_BATCH);
        let batch: Vec<NotifyAlert> = q.drain(..n).collect();
        self.metrics.queue_length.set(q.len() as i64);
        batch
    }

    fn payload(&self, batch: &[NotifyAlert]) -> Value {
        let external = self
            .external_labels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let alerts: Vec<Value> = batch
            .iter()
            .map(|a| {
                // External labels never override the alert's own.
                let mut b = a.labels.to_builder();
                for l in external.iter() {
                    if a.labels.get(&l.name).is_none() {
                        b.set(l.name.as_str(), l.value.as_str());
                    }
                }
                json!({
                    "labels": labels_json(&b.build()),
                    "annotations": labels_json(&a.annotations),
                    "startsAt": rfc3339(a.starts_at),
                    "endsAt": rfc3339(a.ends_at),
                    "generatorURL": a.generator_url,
                })
            })
            .collect();
        Value::Array(alerts)
    }

    async fn post(&self, t: &Target, body: &[u8], count: usize) {
        let labels = vec![("alertmanager".to_string(), t.url.clone())];
        let started = Instant::now();
        let result = self
            .client
            .post(&t.url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("edgeprom/", env!("CARGO_PKG_VERSION")),
            )
            .timeout(t.timeout)
            .body(body.to_vec())
            .send()
            .await;
        let err = match result {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("bad response status {}", r.status())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = err {
            tracing::warn!(alertmanager = %t.url, count, error = %e, "error sending alerts");
            self.metrics
                .errors
                .get_or_create(&labels)
                .inc_by(count as u64);
        }
        self.metrics
            .sent
            .get_or_create(&labels)
            .inc_by(count as u64);
        self.metrics
            .latency
            .get_or_create(&labels)
            .set(started.elapsed().as_secs_f64());
    }

    /// Sends queued alerts until the process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            loop {
                let batch = self.next_batch();
                if batch.is_empty() {
                    break;
                }
                let targets = self
                    .targets
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let body = self.payload(&batch).to_string().into_bytes();
                let sends = targets.iter().map(|t| self.post(t, &body, batch.len()));
                // Concurrently: one slow Alertmanager does not hold up the others.
                futures_util::future::join_all(sends).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeprom_config::{AlertmanagerConfig, Duration as PromDuration};

    fn alert(name: &str) -> NotifyAlert {
        NotifyAlert {
            labels: Labels::from_pairs([("alertname", name), ("cluster", "mine")]),
            annotations: Labels::from_pairs([("summary", "s")]),
            starts_at: 1_700_000_000_000,
            ends_at: 1_700_000_240_000,
            generator_url: "http://edge:9090/graph?g0.expr=up&g0.tab=1".into(),
        }
    }

    fn configured(capacity: usize) -> Arc<Notifier> {
        let n = Notifier::new(capacity, NotifierMetrics::default());
        n.apply_config(
            &AlertingConfig {
                alertmanagers: vec![AlertmanagerConfig {
                    scheme: "http".into(),
                    path_prefix: "/".into(),
                    timeout: PromDuration::from_secs(1),
                    api_version: "v2".into(),
                    targets: vec!["127.0.0.1:9".into()],
                }],
            },
            &Labels::from_pairs([("cluster", "ext"), ("region", "eu")]),
        );
        n
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let n = configured(2);
        n.send((0..5).map(|i| alert(&format!("A{i}"))).collect());
        assert_eq!(n.metrics.dropped.get(), 3);
        assert_eq!(n.metrics.queue_length.get(), 2);
        let batch = n.next_batch();
        let names: Vec<_> = batch
            .iter()
            .filter_map(|a| a.labels.get("alertname"))
            .collect();
        assert_eq!(names, ["A3", "A4"]);
        assert_eq!(n.metrics.queue_length.get(), 0);
    }

    #[test]
    fn payload_is_alertmanagers_v2_shape_with_external_labels_not_overriding() {
        let n = configured(10);
        let body = n.payload(&[alert("A")]);
        assert_eq!(
            body,
            json!([{
                "labels": {"alertname": "A", "cluster": "mine", "region": "eu"},
                "annotations": {"summary": "s"},
                "startsAt": "2023-11-14T22:13:20Z",
                "endsAt": "2023-11-14T22:17:20Z",
                "generatorURL": "http://edge:9090/graph?g0.expr=up&g0.tab=1",
            }])
        );
        assert_eq!(n.alertmanager_urls(), ["http://127.0.0.1:9/api/v2/alerts"]);
    }

    #[test]
    fn batches_hold_at_most_256_alerts() {
        let n = configured(1000);
        n.send((0..300).map(|i| alert(&format!("A{i}"))).collect());
        assert_eq!(n.next_batch().len(), 256);
        assert_eq!(n.next_batch().len(), 44);
        assert!(n.next_batch().is_empty());
    }
}
