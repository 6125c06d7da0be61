//! `POST /api/v1/write`: the Remote-Write 1.0 / 2.0 receiver, answered only with
//! `--web.enable-remote-write-receiver` (404 with Prometheus's message otherwise). Decoding,
//! status codes and commit semantics are `edgeprom_remote::receive`'s; answers are plain text like
//! Prometheus's (Go's `http.Error`). With `--enable-feature=exemplar-storage`, received exemplars
//! join the scraped ones in the in-memory ring.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgeprom_remote::receive;
use edgeprom_scrape::ExemplarStorage;
use edgeprom_scrape::exemplars::{Exemplar, ExemplarError};

use crate::Api;

/// Largest decompressed request accepted.
const MAX_DECOMPRESSED_BYTES: usize = receive::DEFAULT_MAX_DECOMPRESSED_BYTES;

/// Largest request body read: the compressed form of the largest decompressed request (snappy
/// can grow incompressible data slightly). Larger bodies are answered 413 by axum.
pub(crate) const MAX_BODY_BYTES: usize = MAX_DECOMPRESSED_BYTES + MAX_DECOMPRESSED_BYTES / 6 + 32;

/// The in-memory exemplar ring (`--enable-feature=exemplar-storage`) as the receiver's sink; its
/// lock is taken at the first exemplar and held until the request is done.
struct Ring<'a> {
    store: &'a ExemplarStorage,
    writer: Option<edgeprom_scrape::exemplars::ExemplarWriter<'a>>,
}

impl receive::ExemplarSink for Ring<'_> {
    fn add(
        &mut self,
        series: &edgeprom_model::Labels,
        e: &edgeprom_remote::BatchExemplar,
    ) -> Result<(), receive::ExemplarRefusal> {
        let store = self.store;
        let writer = self.writer.get_or_insert_with(|| store.writer());
        let exemplar = Exemplar {
            labels: e.labels.clone(),
            value: e.value,
            ts: e.timestamp,
            has_ts: true,
        };
        match writer.add(series, &exemplar) {
            Ok(_) => Ok(()),
            Err(ExemplarError::OutOfOrder) => Err(receive::ExemplarRefusal::OutOfOrder),
            Err(other) => Err(receive::ExemplarRefusal::Other(other.to_string())),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

pub(crate) async fn handler(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !api.options.enable_remote_write_receiver {
        return text(
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n"
                .into(),
        );
    }
    let get = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = get(header::CONTENT_TYPE);
    let content_encoding = get(header::CONTENT_ENCODING);
    let storage = api.storage.clone();
    let exemplars = api.exemplars.clone();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let answer = tokio::task::spawn_blocking(move || {
        let mut ring = exemplars.as_deref().map(|store| Ring {
            store,
            writer: None,
        });
        receive::handle(
            storage.as_ref(),
            ring.as_mut().map(|r| r as &mut dyn receive::ExemplarSink),
            content_type.as_deref(),
            content_encoding.as_deref(),
            &body,
            MAX_DECOMPRESSED_BYTES,
            now_ms,
        )
    })
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("remote write: {e}\n"),
            );
        }
    };
    let status =
        StatusCode::from_u16(answer.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), err = %answer.body.trim_end(), "Error while storing the remote write request");
    } else if !status.is_success() {
        tracing::debug!(status = status.as_u16(), err = %answer.body.trim_end(), "Refused remote write request");
    }
    let mut resp = if status.is_success() {
        status.into_response()
    } else {
        text(status, answer.body.clone())
    };
    for (name, value) in answer.headers() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}
