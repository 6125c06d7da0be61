//! One remote-write endpoint's HTTP client: builds requests with the spec's headers and the
//! queue's auth, makes one attempt per [`RemoteWriteClient::send`], and classifies the outcome
//! the way Prometheus's `storage/remote/client.go` does (retry on network errors, timeouts and
//! 5xx, on 429 only when `retry_on_http_429`; never on other 4xx).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use edgeprom_config::{RemoteWriteConfig, RemoteWriteMessage};
use edgeprom_http_client::{Auth, build_client, error_chain};
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};

use crate::codec::{EncodeError, Encoder, WriteBatch};

/// Most bytes of an error response body quoted in a [`SendError`] (Prometheus's `maxErrMsgLen`).
const MAX_ERROR_BODY: usize = 1024;

/// What the receiver reports as written, from the `X-Prometheus-Remote-Write-*-Written` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Float samples written.
    pub samples: u64,
    /// Histogram samples written.
    pub histograms: u64,
    /// Exemplars written.
    pub exemplars: u64,
    /// Whether the receiver sent at least one of the headers. When it sent none to a 1.0
    /// request, the counts are those of the batch (a 1.0 receiver answering 2xx wrote it all).
    pub confirmed: bool,
    /// Size of the (compressed) request body sent, for `prometheus_remote_storage_bytes_total`.
    pub request_bytes: u64,
}

/// Why an attempt failed. [`SendError::is_retryable`] decides between backing off and dropping.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The batch could not be encoded (permanent).
    #[error("encoding the request: {0}")]
    Encode(#[from] EncodeError),
    /// No response: connection refused or reset, DNS, TLS, or the `remote_timeout` elapsed
    /// (retryable).
    #[error("{message}")]
    Transport {
        /// The error and its causes on one line.
        message: String,
        /// Whether it was the timeout.
        timeout: bool,
    },
    /// The receiver answered with a non-2xx status.
    #[error("server returned HTTP status {status}: {body}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The first line of the response body (at most 1 KiB of it).
        body: String,
        /// 5xx, or 429 with `retry_on_http_429`.
        retryable: bool,
        /// The `Retry-After` header of a retryable answer, as a delay from now.
        retry_after: Option<Duration>,
        /// What the receiver reported as written despite the error (2.0 partial writes).
        stats: WriteStats,
    },
}

impl SendError {
    /// Whether the same batch should be sent again after a backoff.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Encode(_) => false,
            SendError::Transport { .. } => true,
            SendError::Status { retryable, .. } => *retryable,
        }
    }

    /// The delay the receiver asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            SendError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("remote_write {name}: {message}")]
pub struct ClientBuildError {
    /// The queue's name.
    pub name: String,
    /// What was wrong (unreadable TLS files, bad header values, bad URL, ...).
    pub message: String,
}

/// A client for one `remote_write` endpoint. Cheap to share (`Arc`) between shards: sends run
/// concurrently, each with an encoder taken from a small pool.
#[derive(Debug)]
pub struct RemoteWriteClient {
    name: String,
    url: reqwest::Url,
    http: reqwest::Client,
    timeout: Duration,
    headers: HeaderMap,
    auth: Option<Auth>,
    retry_on_429: bool,
    /// Starts as the configured message; once a 2.0 receiver turned out to speak only 1.0, false.
    v2: AtomicBool,
    encoders: Mutex<Vec<Encoder>>,
}

impl RemoteWriteClient {
    /// Builds the client for `cfg`: TLS material and credentials files are read now.
    pub fn new(cfg: &RemoteWriteConfig) -> Result<RemoteWriteClient, ClientBuildError> {
        let fail = |message: String| ClientBuildError {
            name: cfg.name.clone(),
            message,
        };
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| fail(format!("url: {e}")))?;
        let http =
            build_client(&cfg.http, Duration::from_secs(90)).map_err(|e| fail(e.to_string()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| fail(format!("header {name:?}: {e}")))?;
            let v =
                HeaderValue::from_str(value).map_err(|e| fail(format!("header {name:?}: {e}")))?;
            headers.insert(n, v);
        }
        // The config loader refuses `Authorization` in `headers`, so the two never collide.
        let auth = Auth::from_config(&cfg.http).map_err(|e| fail(e.to_string()))?;
        Ok(RemoteWriteClient {
            name: cfg.name.clone(),
            url,
            http,
            timeout: cfg.remote_timeout.as_std(),
            headers,
            auth,
            retry_on_429: cfg.queue_config.retry_on_http_429,
            v2: AtomicBool::new(cfg.protobuf_message == RemoteWriteMessage::V2),
            encoders: Mutex::new(Vec::new()),
        })
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The protocol the client currently speaks: the configured one, or 1.0 after a fallback.
    pub fn message(&self) -> RemoteWriteMessage {
        if self.v2.load(Ordering::Relaxed) {
            RemoteWriteMessage::V2
        } else {
            RemoteWriteMessage::V1
        }
    }

    /// Sends `batch` once (no retries: the caller backs off on [`SendError::is_retryable`]).
    ///
    /// A 2.0 request answered with 415, or with a 2xx lacking every
    /// `X-Prometheus-Remote-Write-*-Written` header (the spec says to take that as 415: a 1.0
    /// receiver that decoded the 2.0 message as an empty 1.0 one), switches this client to 1.0 for
    /// good and the same batch is sent again as 1.0 before returning; that second answer is the
    /// result.
    pub async fn send(&self, batch: &WriteBatch) -> Result<WriteStats, SendError> {
        let message = self.message();
        let result = self.send_as(batch, message).await;
        if message == RemoteWriteMessage::V2 {
            let falls_back = match &result {
                Ok(stats) => !stats.confirmed,
                Err(e) => e.status() == Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            };
            if falls_back {
                self.v2.store(false, Ordering::Relaxed);
                return self.send_as(batch, RemoteWriteMessage::V1).await;
            }
        }
        result
    }

    async fn send_as(
        &self,
        batch: &WriteBatch,
        message: RemoteWriteMessage,
    ) -> Result<WriteStats, SendError> {
        let body = self.encode(batch, message)?;
        let request_bytes = body.len() as u64;
        let mut req = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .headers(self.headers.clone())
            .header(CONTENT_ENCODING, "snappy")
            .header(CONTENT_TYPE, crate::content_type(message))
            .header(crate::VERSION_HEADER, crate::version_header_value(message))
            .body(body);
        if let Some(auth) = &self.auth {
            req = auth.apply(req);
        }
        let mut resp = req.send().await.map_err(|e| SendError::Transport {
            timeout: e.is_timeout(),
            message: error_chain(&e),
        })?;
        let status = resp.status();
        let mut stats = written_stats(resp.headers());
        stats.request_bytes = request_bytes;
        if status.is_success() {
            if !stats.confirmed && message == RemoteWriteMessage::V1 {
                stats.samples = batch.sample_count() as u64;
                stats.exemplars = batch.exemplar_count() as u64;
            }
            return Ok(stats);
        }
        let retryable = status.is_server_error()
            || (self.retry_on_429 && status == StatusCode::TOO_MANY_REQUESTS);
        let retry_after = if retryable {
            resp.headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        } else {
            None
        };
        let mut raw = Vec::new();
        while raw.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(c)) => raw.extend_from_slice(&c),
                _ => break,
            }
        }
        raw.truncate(MAX_ERROR_BODY);
        let text = String::from_utf8_lossy(&raw);
        let body = text.lines().next().unwrap_or("").trim_end().to_string();
        Err(SendError::Status {
            status,
            body,
            retryable,
            retry_after,
            stats,
        })
    }

    fn encode(
        &self,
        batch: &WriteBatch,
        message: RemoteWriteMessage,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut enc = self
            .encoders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let body = enc.encode(batch, message).map(<[u8]>::to_vec);
        let mut pool = self.encoders.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 64 {
            pool.push(enc);
        }
        body
    }
}

/// The `-Written` headers; a header that is absent or not a number counts 0.
fn written_stats(h: &HeaderMap) -> WriteStats {
    let mut s = WriteStats::default();
    for (name, slot) in [
        (crate::SAMPLES_WRITTEN_HEADER, &mut s.samples),
        (crate::HISTOGRAMS_WRITTEN_HEADER, &mut s.histograms),
        (crate::EXEMPLARS_WRITTEN_HEADER, &mut s.exemplars),
    ] {
        if let Some(v) = h
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        {
            s.confirmed = true;
            *slot = v.trim().parse().unwrap_or(0);
        }
    }
    s
}

/// `Retry-After`: delay seconds or an HTTP date (a date in the past means no wait).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&later).expect("date");
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
