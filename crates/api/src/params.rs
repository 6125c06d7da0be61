//! Request parameters: the query string and a form-encoded body merged as Go's `Request.ParseForm`
//! merges them, plus Prometheus's parsers for timestamps, durations and limits.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};

use crate::response::ApiError;

/// Go's `ParseForm` reads at most 10 MB of a form body; so do we.
const MAX_FORM_BYTES: usize = 10 << 20;

/// Prometheus's `minTime`/`maxTime` in milliseconds, kept well inside `i64` so that storage
/// arithmetic on them cannot overflow.
pub(crate) const MIN_TIME: i64 = i64::MIN / 4;
/// See [`MIN_TIME`].
pub(crate) const MAX_TIME: i64 = i64::MAX / 4;

/// All form values of a request: POST/PUT form body first, then the URL query, as Go orders them.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parameters from URL-encoded text (a query string or a form body).
    pub fn from_encoded(body: &[u8], query: Option<&str>) -> Params {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(pairs)
    }

    /// The first value of `name`, if any (an empty value counts as absent, as Go's `FormValue`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of a repeated parameter such as `match[]`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A timestamp parameter in milliseconds, or `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_time(v).map_err(|e| ApiError::bad_param(name, e)),
        }
    }

    /// A duration parameter in milliseconds, if present.
    pub fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| parse_duration(v).map_err(|e| ApiError::bad_param(name, e)))
            .transpose()
    }

    /// The `limit` parameter: 0 (no limit) when absent.
    pub fn limit(&self) -> Result<usize, ApiError> {
        let Some(v) = self.get("limit") else {
            return Ok(0);
        };
        let n: i64 = v
            .parse()
            .map_err(|_| ApiError::bad_data(format!("cannot parse \"{v}\" to a valid limit")))?;
        if n < 0 {
            return Err(ApiError::bad_data("limit must be non-negative"));
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Params, ApiError> {
        let query = req.uri().query().map(str::to_string);
        let is_form = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| {
                    ct.trim_start()
                        .to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
        let body = if is_form {
            axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
                .await
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?
        } else {
            Bytes::new()
        };
        Ok(Params::from_encoded(&body, query.as_deref()))
    }
}

/// Parses a timestamp as Prometheus does: float Unix seconds (rounded to milliseconds) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse \"{s}\" to a valid timestamp");
    if let Ok(secs) = s.parse::<f64>() {
        // Beyond ±2^53 ms a float no longer holds whole milliseconds; Prometheus's range ends near there.
        if !secs.is_finite() || secs.abs() > 9.0e15 {
            return Err(err());
        }
        let whole = secs.trunc();
        let frac = ((secs - whole) * 1000.0).round();
        return Ok(whole as i64 * 1000 + frac as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| err())
}

/// Parses a duration as Prometheus does: float seconds or a Prometheus duration (`1m30s`);
/// returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = secs * 1000.0;
        if !ms.is_finite() || ms.abs() >= 9.2e15 {
            return Err(format!(
                "cannot parse \"{s}\" to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    parse_prom_duration(s)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .ok_or_else(|| format!("cannot parse \"{s}\" to a valid duration"))
}

/// A Prometheus duration string (`5m`, `1h30m`, `100ms`) without the float form.
pub(crate) fn parse_prom_duration(s: &str) -> Option<std::time::Duration> {
    edgeprom_config::Duration::parse(s).ok().map(|d| d.as_std())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_float_seconds_or_rfc3339() {
        assert_eq!(parse_time("4"), Ok(4000));
        assert_eq!(parse_time("1712345670.5"), Ok(1_712_345_670_500));
        assert_eq!(parse_time("-1.25"), Ok(-1250));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51+02:00"),
            Ok(1_435_781_451_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations_as_float_seconds_or_prometheus_durations() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert!(parse_duration("30s1m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("1e300").is_err());
    }

    #[test]
    fn body_values_come_before_query_values_and_repeat() {
        let p = Params::from_encoded(b"query=up&match%5B%5D=a", Some("query=down&match[]=b"));
        assert_eq!(p.get("query"), Some("up"));
        assert_eq!(p.all("match[]"), vec!["a", "b"]);
        assert_eq!(p.get("absent"), None);
    }
}
