//! The receiving side: one request (headers + body) in, one appender commit, one response out,
//! with the status codes of Prometheus's write handler (`storage/remote/write_handler.go` and
//! `client_golang`'s `exp/api/remote`):
//!
//! | case | status |
//! |---|---|
//! | `Content-Encoding` other than `snappy`, `Content-Type` not `application/x-protobuf`, unknown `proto=` | 415 |
//! | bad snappy or protobuf, bad symbol reference | 400 |
//! | decompressed body over the limit | 413 |
//! | 1.0: an out-of-order, duplicate, too old or too-far-in-the-future (> now + 10 min) sample | 400, nothing of the request is kept |
//! | 2.0: such samples, invalid label sets, series without samples | 400, everything else is kept (partial write) |
//! | native histogram samples (edgeprom stores floats only) | 400, everything else is kept |
//! | storage failure | 500, nothing is kept |
//! | all written | 204 |
//!
//! 1.0 series with invalid label sets (no metric name, empty or repeated names) are skipped
//! silently, as Prometheus does. Every response carries the three
//! `X-Prometheus-Remote-Write-*-Written` headers (Prometheus sets them for both versions).
//! Exemplars go to an [`ExemplarSink`] when one is given (edgeprom's in-memory exemplar ring with
//! `--enable-feature=exemplar-storage`), after the samples have committed; an out-of-order
//! exemplar makes a 2.0 answer a 400, other refusals are ignored, as in Prometheus. Metadata is
//! accepted and not stored. Error bodies are plain text, one line per problem, like Go's
//! `http.Error`.

use edgeprom_model::{AppendError, Appendable, Labels, SeriesRef};
use reqwest::StatusCode;

use crate::RemoteWriteMessage;
use crate::codec::{BatchExemplar, DecodeError, Decoded, decode};

/// Default bound on a request's decompressed size: 32 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 32 << 20;

/// How far ahead of the receiver's clock a sample may be (Prometheus's `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// Why an [`ExemplarSink`] did not store an exemplar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExemplarRefusal {
    /// Older than the series' newest exemplar (a 400 in 2.0).
    OutOfOrder,
    /// Any other reason (too long, storage disabled): ignored, as Prometheus ignores them.
    Other(String),
}

/// Where received exemplars are stored.
pub trait ExemplarSink {
    /// Stores `exemplar` of the series `series` (`Ok` also for a repeat of the newest one).
    fn add(&mut self, series: &Labels, exemplar: &BatchExemplar) -> Result<(), ExemplarRefusal>;
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// What was written.
    pub written: Written,
    /// Plain-text body: empty on success, the errors otherwise (newline-terminated).
    pub body: String,
}

impl Response {
    fn error(status: StatusCode, msg: impl std::fmt::Display, written: Written) -> Response {
        Response {
            status,
            written,
            body: format!("{msg}\n"),
        }
    }

    /// The response headers to set: the three `-Written` counts.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (
                crate::SAMPLES_WRITTEN_HEADER,
                self.written.samples.to_string(),
            ),
            (
                crate::HISTOGRAMS_WRITTEN_HEADER,
                self.written.histograms.to_string(),
            ),
            (
                crate::EXEMPLARS_WRITTEN_HEADER,
                self.written.exemplars.to_string(),
            ),
        ]
    }
}

/// Counts reported in the `-Written` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Float samples committed.
    pub samples: u64,
    /// Histogram samples committed (always 0: not supported).
    pub histograms: u64,
    /// Exemplars stored (0 without an [`ExemplarSink`]).
    pub exemplars: u64,
}

/// Which message a `Content-Type` announces: none or bare `application/x-protobuf` is 1.0,
/// `proto=` names it. `Err` is the 415 message.
pub fn message_of(content_type: Option<&str>) -> Result<RemoteWriteMessage, String> {
    let ct = content_type.map(str::trim).filter(|c| !c.is_empty());
    let Some(ct) = ct else {
        return Ok(RemoteWriteMessage::V1);
    };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if media != "application/x-protobuf" {
        return Err(format!(
            "expected application/x-protobuf as the first (media) part, got {ct} content-type"
        ));
    }
    for p in parts {
        let Some((k, v)) = p.trim().split_once('=') else {
            return Err(format!(
                "expected parameters to be key-values, got {p} in {ct} content-type"
            ));
        };
        if k.trim() == "proto" {
            return RemoteWriteMessage::parse(v.trim().trim_matches('"'))
                .map_err(|e| format!("got {ct} content type; {e}"));
        }
    }
    Ok(RemoteWriteMessage::V1)
}

/// Handles one write request: checks the headers, decodes at most `max_decompressed` bytes,
/// appends through `appendable` in one commit, then hands exemplars to `exemplars` if given.
/// Blocking (the commit writes the WAL): call it off the async runtime. `now_ms` is the
/// receiver's clock, for the 10-minute future bound.
pub fn handle(
    appendable: &dyn Appendable,
    exemplars: Option<&mut dyn ExemplarSink>,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    max_decompressed: usize,
    now_ms: i64,
) -> Response {
    let none = Written::default();
    if let Some(enc) = content_encoding.map(str::trim).filter(|e| !e.is_empty())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return Response::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{enc} encoding (compression) is not accepted by this server; only snappy is acceptable"
            ),
            none,
        );
    }
    let message = match message_of(content_type) {
        Ok(m) => m,
        Err(e) => return Response::error(StatusCode::UNSUPPORTED_MEDIA_TYPE, e, none),
    };
    let decoded = match decode(body, message, max_decompressed) {
        Ok(d) => d,
        Err(e @ DecodeError::TooLarge { .. }) => {
            return Response::error(StatusCode::PAYLOAD_TOO_LARGE, e, none);
        }
        Err(e) => return Response::error(StatusCode::BAD_REQUEST, e, none),
    };
    append(appendable, exemplars, message, decoded, now_ms)
}

fn append(
    appendable: &dyn Appendable,
    exemplars: Option<&mut dyn ExemplarSink>,
    message: RemoteWriteMessage,
    decoded: Decoded,
    now_ms: i64,
) -> Response {
    let v2 = message == RemoteWriteMessage::V2;
    let max_t = now_ms.saturating_add(MAX_AHEAD_MS);
    let mut problems: Vec<String> = Vec::new();
    if v2 {
        for s in &decoded.invalid_series {
            problems.push(format!(
                "invalid labels for series {}: {}",
                s.labels, s.reason
            ));
        }
    }
    let mut app = appendable.appender();
    let mut written = Written::default();
    for series in &decoded.batch.series {
        if v2 && series.samples.is_empty() {
            // Histogram-only series are not in the batch; their samples are reported below.
            problems.push(format!(
                "TimeSeries must contain at least one sample or histogram for series {}",
                series.labels
            ));
            continue;
        }
        let mut hint: Option<SeriesRef> = None;
        for s in &series.samples {
            let res = if s.t > max_t {
                Err(AppendError::TooOld)
            } else {
                app.append(hint, &series.labels, s.t, s.v)
            };
            match res {
                Ok(r) => {
                    hint = Some(r);
                    written.samples += 1;
                }
                Err(e) if e.is_per_sample() => {
                    let what = if s.t > max_t {
                        "out of bounds: timestamp is too far in the future".to_string()
                    } else {
                        e.to_string()
                    };
                    if !v2 {
                        app.rollback();
                        return Response::error(StatusCode::BAD_REQUEST, what, none_written());
                    }
                    problems.push(format!("{what} for series {}", series.labels));
                }
                Err(AppendError::InvalidSeries(labels, why)) => {
                    if v2 {
                        problems.push(format!(
                            "invalid metric name or labels, got {labels}: {why}"
                        ));
                    }
                    break;
                }
                Err(e) => {
                    app.rollback();
                    return Response::error(StatusCode::INTERNAL_SERVER_ERROR, e, none_written());
                }
            }
        }
    }
    if decoded.histograms > 0 {
        problems.push(format!(
            "{} native histogram samples not written: edgeprom stores float samples only",
            decoded.histograms
        ));
    }
    if let Err(e) = app.commit() {
        return Response::error(StatusCode::INTERNAL_SERVER_ERROR, e, none_written());
    }
    if let Some(sink) = exemplars {
        for series in &decoded.batch.series {
            for e in &series.exemplars {
                match sink.add(&series.labels, e) {
                    Ok(()) => written.exemplars += 1,
                    Err(ExemplarRefusal::OutOfOrder) if v2 => problems.push(format!(
                        "out of order exemplar for series {}",
                        series.labels
                    )),
                    Err(_) => {}
                }
            }
        }
    }
    if problems.is_empty() {
        Response {
            status: StatusCode::NO_CONTENT,
            written,
            body: String::new(),
        }
    } else {
        Response::error(StatusCode::BAD_REQUEST, problems.join("\n"), written)
    }
}

fn none_written() -> Written {
    Written::default()
}
