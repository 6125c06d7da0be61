//! The `remote_write` section: where and how samples are forwarded (Prometheus's
//! `config.RemoteWriteConfig`, `QueueConfig` and `MetadataConfig`, with their defaults).

use std::collections::BTreeMap;
use std::fmt;

use crate::duration::Duration;
use crate::http::HttpClientConfig;
use crate::relabel::RelabelConfig;

/// Request headers a `headers:` map may not set (lower case), as in Prometheus: the protocol's
/// own headers, hop-by-hop headers, and those SigV4 signs. `Authorization` is refused separately
/// with a pointer to the auth settings.
pub const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// The protobuf message a remote-write endpoint is sent (`protobuf_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RemoteWriteMessage {
    /// `prometheus.WriteRequest`, Remote-Write 1.0 (the default).
    #[default]
    V1,
    /// `io.prometheus.write.v2.Request`, Remote-Write 2.0.
    V2,
}

impl RemoteWriteMessage {
    /// The fully qualified message name, as written in the configuration and in the
    /// `Content-Type` `proto=` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteWriteMessage::V1 => "prometheus.WriteRequest",
            RemoteWriteMessage::V2 => "io.prometheus.write.v2.Request",
        }
    }

    /// Parses a fully qualified message name (exact spelling).
    pub fn parse(s: &str) -> Result<RemoteWriteMessage, String> {
        match s {
            "prometheus.WriteRequest" => Ok(RemoteWriteMessage::V1),
            "io.prometheus.write.v2.Request" => Ok(RemoteWriteMessage::V2),
            other => Err(format!(
                "unknown type for remote write protobuf message {other}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
            )),
        }
    }
}

impl fmt::Display for RemoteWriteMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `remote_write` entry with Prometheus's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    /// Where requests are POSTed; an absolute `http`/`https` URL.
    pub url: String,
    /// The queue's name (`remote_name` in metrics): as written, else the first six hex digits
    /// of a hash of this entry, as Prometheus does. Unique across the file.
    pub name: String,
    /// Per-request timeout; 30s.
    pub remote_timeout: Duration,
    /// Extra request headers; reserved headers are refused at load.
    pub headers: BTreeMap<String, String>,
    /// Relabelling applied to every series before it is sent (external labels already attached).
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Whether exemplars are sent; false.
    pub send_exemplars: bool,
    /// Protocol version; `prometheus.WriteRequest` (1.0).
    pub protobuf_message: RemoteWriteMessage,
    /// Authentication, TLS and proxy. HTTP/2 is off by default here, as in Prometheus.
    pub http: HttpClientConfig,
    /// Queue and sharding settings.
    pub queue_config: QueueConfig,
    /// Metadata sending settings.
    pub metadata_config: MetadataConfig,
}

/// `queue_config`: buffering, sharding, batching and retry settings of one remote-write queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading the WAL blocks; 10000.
    pub capacity: usize,
    /// Most concurrent shards; 50.
    pub max_shards: usize,
    /// Fewest concurrent shards (also the starting count); 1.
    pub min_shards: usize,
    /// Most samples in one request; 2000.
    pub max_samples_per_send: usize,
    /// Longest a sample waits in a shard before a partial batch is sent; 5s.
    pub batch_send_deadline: Duration,
    /// First retry delay, doubled on every retry; 30ms.
    pub min_backoff: Duration,
    /// Retry delay cap; 5s.
    pub max_backoff: Duration,
    /// Retry on `429 Too Many Requests` (otherwise such a batch is dropped); false.
    pub retry_on_http_429: bool,
    /// Samples older than this are dropped instead of sent; 0 = no limit.
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

/// `metadata_config`: how metric metadata (type, help, unit) is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataConfig {
    /// Whether metadata is sent at all; true.
    pub send: bool,
    /// How often all metadata is sent (1.0 only); 1m.
    pub send_interval: Duration,
    /// Most metadata entries in one request; 2000 (Prometheus 3.x's default).
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> MetadataConfig {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}
