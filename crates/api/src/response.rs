//! Prometheus's JSON envelope, its error types and status codes, and the number formats Grafana
//! parses (sample values as strings, timestamps as float seconds).

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgeprom_model::Labels;

/// Prometheus's `errorType`s and the status codes its API answers them with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// 400: a parameter is missing or malformed.
    BadData,
    /// 422: the query could not be evaluated.
    Execution,
    /// 503: the query ran out of time.
    Timeout,
    /// 503: the query was canceled.
    Canceled,
    /// 500: something failed inside the server.
    Internal,
    /// 503: the endpoint is disabled or the feature not available.
    Unavailable,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout | ErrorType::Canceled | ErrorType::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error, answered as `{"status":"error","errorType":…,"error":…}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct ApiError {
    /// The error type (and so the status code).
    pub kind: ErrorType,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorType, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::BadData, message)
    }

    /// A `bad_data` error about one parameter, worded as Prometheus words it.
    pub fn bad_param(name: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::bad_data(format!("invalid parameter \"{name}\": {message}"))
    }

    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::Internal, message)
    }
}

impl From<edgeprom_promql::QueryError> for ApiError {
    fn from(e: edgeprom_promql::QueryError) -> ApiError {
        use edgeprom_promql::QueryError as Q;
        match e {
            Q::Parse(m) => ApiError::bad_param("query", m),
            Q::Execution(m) => ApiError::new(ErrorType::Execution, m),
            Q::Timeout => ApiError::new(ErrorType::Timeout, e.to_string()),
            Q::TooManySamples | Q::TooManySamplesTotal(_) => {
                ApiError::new(ErrorType::Execution, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":{},\"error\":{}}}",
            json_str(self.kind.as_str()),
            json_str(&self.message)
        );
        json_response(self.kind.status(), body)
    }
}

/// A successful answer: `data` as already-encoded JSON, plus annotations.
#[derive(Debug, Clone, Default)]
pub struct Success {
    /// The encoded `data` value.
    pub data: String,
    /// `warnings`, omitted when empty.
    pub warnings: Vec<String>,
    /// `infos`, omitted when empty.
    pub infos: Vec<String>,
}

impl Success {
    /// A success whose `data` is `value`.
    pub fn json(value: &serde_json::Value) -> Success {
        Success::raw(value.to_string())
    }

    /// A success whose `data` is already-encoded JSON.
    pub fn raw(data: String) -> Success {
        Success {
            data,
            ..Success::default()
        }
    }
}

impl IntoResponse for Success {
    fn into_response(self) -> Response {
        let mut body = String::with_capacity(self.data.len() + 64);
        body.push_str("{\"status\":\"success\",\"data\":");
        body.push_str(&self.data);
        for (key, list) in [("warnings", &self.warnings), ("infos", &self.infos)] {
            if !list.is_empty() {
                let _ = write!(body, ",\"{key}\":{}", serde_json::json!(list));
            }
        }
        body.push('}');
        json_response(StatusCode::OK, body)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The result type of every API handler.
pub type ApiResult = Result<Success, ApiError>;

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

pub use edgeprom_promql::format_value;

/// A millisecond timestamp as a JSON number of seconds (`4`, `1.5`, `1.001`): exact, unlike a
/// division in floating point.
pub fn write_timestamp(out: &mut String, ms: i64) {
    let abs = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", abs / 1000);
    let mut frac = abs % 1000;
    if frac != 0 {
        let mut digits = 3;
        while frac.is_multiple_of(10) {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
}

/// `[<t>,"<v>"]`.
pub fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_value(v));
    out.push_str("\"]");
}

/// A label set as a JSON object of strings, in label order.
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_str(&l.name));
        out.push(':');
        out.push_str(&json_str(&l.value));
    }
    out.push('}');
}

/// A label set as a `serde_json` object.
pub fn labels_json(labels: &Labels) -> serde_json::Value {
    serde_json::Value::Object(
        labels
            .iter()
            .map(|l| (l.name.clone(), serde_json::Value::from(l.value.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_use_go_spelling() {
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(-1.5), "-1.5");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn timestamps_are_exact_seconds() {
        let ts = |ms| {
            let mut s = String::new();
            write_timestamp(&mut s, ms);
            s
        };
        assert_eq!(ts(4000), "4");
        assert_eq!(ts(1500), "1.5");
        assert_eq!(ts(1001), "1.001");
        assert_eq!(ts(1010), "1.01");
        assert_eq!(ts(-1500), "-1.5");
        assert_eq!(ts(0), "0");
        assert_eq!(ts(1_712_345_670_500), "1712345670.5");
    }
}
