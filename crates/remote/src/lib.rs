//! Prometheus Remote-Write 1.0 and 2.0: the protocol layer under edgeprom's remote-write queues
//! and its `/api/v1/write` receiver.
//!
//! The queues ([`RemoteWrite`], one [`queue::Queue`] per `remote_write` entry: WAL tailing,
//! shards, backoff, resume after restart, self-metrics) are built on four things:
//!
//! - **What to send**: a [`WriteBatch`] of [`BatchSeries`] (labels with external labels already
//!   attached and write relabelling applied, samples oldest first, optional exemplars and 2.0
//!   metadata) plus [`FamilyMetadata`] for 1.0's metadata list. [`WriteBatch::clear`] keeps the
//!   allocations for the next batch.
//! - **How it is encoded**: an [`Encoder`] per shard turns a batch into a snappy-compressed
//!   `prometheus.WriteRequest` or `io.prometheus.write.v2.Request` body, reusing its buffers;
//!   [`decode`] turns any body back into a batch (the receiver and tests use it).
//! - **How it is sent**: [`RemoteWriteClient::new`] builds a client from an
//!   [`edgeprom_config::RemoteWriteConfig`] (URL, timeout, headers, auth, TLS, proxy, protocol);
//!   [`RemoteWriteClient::send`] makes **one** attempt and classifies the outcome: `Ok`
//!   [`WriteStats`], or a [`SendError`] whose [`SendError::is_retryable`] says whether the shard
//!   should back off and retry (network errors, timeouts, 5xx, and 429 when `retry_on_http_429`),
//!   with [`SendError::retry_after`] from a `Retry-After` header. A 2.0 client whose receiver
//!   answers 415, or a 2xx without any `X-Prometheus-Remote-Write-*-Written` header (the spec's sign
//!   of a 1.0 receiver), switches to 1.0 for the rest of its life and resends the batch as 1.0
//!   within the same call; [`RemoteWriteClient::message`] tells which protocol it speaks now.
//! - **How it is received**: [`receive::handle`] decodes a request with its headers, appends it
//!   through an [`edgeprom_model::Appendable`] in one commit with Prometheus's status codes (and
//!   exemplars to a [`receive::ExemplarSink`]), and returns the response to give (status,
//!   `X-Prometheus-Remote-Write-*-Written` headers, body).
//!
//! ```no_run
//! # async fn demo(cfg: &edgeprom_config::RemoteWriteConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use edgeprom_model::{Labels, Sample};
//! use edgeprom_remote::{BatchSeries, RemoteWriteClient, WriteBatch};
//!
//! let client = RemoteWriteClient::new(cfg)?;
//! let mut batch = WriteBatch::new();
//! batch.series.push(BatchSeries {
//!     labels: Labels::from_pairs([("__name__", "up"), ("job", "node"), ("site", "edge-1")]),
//!     samples: vec![Sample { t: 1_700_000_000_000, v: 1.0 }],
//!     ..Default::default()
//! });
//! match client.send(&batch).await {
//!     Ok(stats) => println!("{} samples written", stats.samples),
//!     Err(e) if e.is_retryable() => { /* back off (at least e.retry_after()) and retry */ }
//!     Err(e) => eprintln!("dropping batch: {e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! Not covered: native histograms (decoded and counted, never stored or sent), SigV4 / Azure AD /
//! Google IAM / OAuth2 auth (refused by the config loader).

#![warn(missing_docs)]

pub mod client;
pub mod codec;
pub mod metrics;
pub mod progress;
pub mod proto;
pub mod queue;
pub mod receive;
mod sender;

pub use client::{RemoteWriteClient, SendError, WriteStats};
pub use codec::{
    BatchExemplar, BatchSeries, DecodeError, Decoded, EncodeError, Encoder, FamilyMetadata,
    InvalidSeries, SeriesMetadata, WireLabels, WirePairs, WriteBatch, decode, decode_protobuf,
};
pub use edgeprom_config::RemoteWriteMessage;
pub use metrics::RemoteMetrics;
pub use queue::{MetadataSource, QueueError};
pub use sender::RemoteWrite;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = edgeprom_http_client::USER_AGENT;

/// Header naming the protocol version of a request.
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Write-Version";
/// Response header: float samples written.
pub const SAMPLES_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Samples-Written";
/// Response header: histogram samples written.
pub const HISTOGRAMS_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Histograms-Written";
/// Response header: exemplars written.
pub const EXEMPLARS_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Exemplars-Written";

/// The `Content-Type` a request of `message` is sent with: bare `application/x-protobuf` for 1.0
/// (what 1.x receivers expect), with the `proto=` parameter for 2.0.
pub fn content_type(message: RemoteWriteMessage) -> &'static str {
    match message {
        RemoteWriteMessage::V1 => "application/x-protobuf",
        RemoteWriteMessage::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    }
}

/// The `X-Prometheus-Remote-Write-Version` value for `message`.
pub fn version_header_value(message: RemoteWriteMessage) -> &'static str {
    match message {
        RemoteWriteMessage::V1 => "0.1.0",
        RemoteWriteMessage::V2 => "2.0.0",
    }
}

/// Adds `external` labels to `labels` where the series does not have them, as Prometheus does
/// before write relabelling (a series' own label wins).
pub fn with_external_labels(
    labels: &edgeprom_model::Labels,
    external: &edgeprom_model::Labels,
) -> edgeprom_model::Labels {
    if external.is_empty() || external.iter().all(|l| labels.contains(&l.name)) {
        return labels.clone();
    }
    let mut b = labels.to_builder();
    for l in external {
        if !labels.contains(&l.name) {
            b.set(l.name.clone(), l.value.clone());
        }
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use edgeprom_model::Labels;

    #[test]
    fn external_labels_fill_in_without_overriding() {
        let series = Labels::from_pairs([("__name__", "up"), ("site", "own")]);
        let external = Labels::from_pairs([("site", "edge-1"), ("region", "eu")]);
        assert_eq!(
            super::with_external_labels(&series, &external),
            Labels::from_pairs([("__name__", "up"), ("region", "eu"), ("site", "own")])
        );
        assert_eq!(super::with_external_labels(&series, &Labels::new()), series);
    }
}
