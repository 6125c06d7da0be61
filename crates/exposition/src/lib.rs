//! Zero-copy pull parser for the Prometheus text exposition format (0.0.4, also served as 1.0.0)
//! and OpenMetrics 1.0, following the behaviour of Prometheus 3's `model/textparse`.
//!
//! ```
//! use edgeprom_exposition::{Entry, Format, Parser};
//!
//! let body = b"# TYPE up gauge\nup{job=\"node\"} 1\n";
//! let mut p = Parser::new(body, Format::Text)?;
//! while let Some(entry) = p.next()? {
//!     if let Entry::Series(s) = entry {
//!         assert_eq!(s.raw(), "up{job=\"node\"}");
//!         assert_eq!(s.value(), 1.0);
//!     }
//! }
//! # Ok::<(), edgeprom_exposition::ParseError>(())
//! ```
//!
//! Entries borrow from the body: the scrape loop can key its series cache by [`Series::raw`] and
//! only build [`edgeprom_model::Labels`] ([`Series::to_labels`]) on a miss. Nothing on the sample
//! path allocates unless a name or value contains an escape.
//!
//! Any malformed line is a [`ParseError`] carrying its 1-based line number; like Prometheus, the
//! caller is expected to discard the whole scrape.
//!
//! With the `testgen` feature, [`testgen`] generates Dynamo-shaped bodies for benches and tests.
#![warn(missing_docs)]

mod lex;
mod parser;
#[cfg(feature = "testgen")]
pub mod testgen;

pub use parser::{Entry, Exemplar, LabelIter, Parser, Series};

/// An exposition format this crate parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format (`text/plain; version=0.0.4`, and the 1.0.0 variant with quoted
    /// UTF-8 names, which the same parser handles).
    Text,
    /// OpenMetrics 1.0 (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// The format for a response's `Content-Type`, or `None` when it is blank, malformed or not
    /// a text format (the caller applies its fallback, as Prometheus 3's
    /// `fallback_scrape_protocol` does). Matching ignores case and parameters such as `version`.
    pub fn from_content_type(ct: &str) -> Option<Format> {
        let mut parts = ct.split(';');
        let media = parts.next()?.trim();
        // Prometheus refuses a Content-Type whose parameters do not parse (Go's
        // mime.ParseMediaType fails), so this does too rather than guessing.
        for param in parts {
            let param = param.trim();
            if param.is_empty() {
                continue;
            }
            match param.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {}
                _ => return None,
            }
        }
        if media.eq_ignore_ascii_case("text/plain") {
            Some(Format::Text)
        } else if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else {
            None
        }
    }
}

/// The `Accept` header Prometheus 3 sends with its default `scrape_protocols`
/// (`OpenMetricsText1.0.0, OpenMetricsText0.0.1, PrometheusText1.0.0, PrometheusText0.0.4`).
///
/// The q-values count down from 0.6: Prometheus starts at one more than the number of protocols
/// it knows (five, including `PrometheusProto`) and decrements per listed protocol, ending with
/// `*/*` so a target with any other type still answers. The 1.0.0 variants carry
/// `escaping=allow-utf-8`, asking for UTF-8 names unescaped, which this parser reads.
pub const DEFAULT_ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// Why [`accept_header`] refused a protocol list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not a Prometheus scrape protocol name.
    #[error(
        "unknown scrape protocol {0:?}, supported: OpenMetricsText0.0.1, OpenMetricsText1.0.0, PrometheusText0.0.4, PrometheusText1.0.0"
    )]
    Unknown(String),
    /// A Prometheus protocol this parser cannot read (the protobuf format).
    #[error("scrape protocol {0:?} is not supported by edgeprom")]
    Unsupported(String),
    /// The same protocol listed twice, which Prometheus's config validation also rejects.
    #[error("duplicated protocol in scrape_protocols: {0:?}")]
    Duplicate(String),
    /// No protocol at all.
    #[error("scrape_protocols cannot be empty")]
    Empty,
}

/// Builds an `Accept` header from Prometheus `scrape_protocols` names, in preference order,
/// exactly as Prometheus 3 does with the default (`allow-utf-8`) escaping scheme:
/// `accept_header(&["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0",
/// "PrometheusText0.0.4"])` equals [`DEFAULT_ACCEPT_HEADER`].
pub fn accept_header(protocols: &[&str]) -> Result<String, ProtocolError> {
    // Prometheus's starting weight is len(ScrapeProtocolsHeaders)+1, protobuf included, even
    // though edgeprom refuses protobuf: keeping it makes the header byte-identical.
    const KNOWN_PROTOCOLS: usize = 5;
    if protocols.is_empty() {
        return Err(ProtocolError::Empty);
    }
    let mut out = String::with_capacity(64 * protocols.len());
    let mut weight = KNOWN_PROTOCOLS + 1;
    for (i, &p) in protocols.iter().enumerate() {
        if protocols[..i].contains(&p) {
            return Err(ProtocolError::Duplicate(p.to_string()));
        }
        let media = match p {
            "OpenMetricsText1.0.0" => {
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8"
            }
            "OpenMetricsText0.0.1" => "application/openmetrics-text;version=0.0.1",
            "PrometheusText1.0.0" => "text/plain;version=1.0.0;escaping=allow-utf-8",
            "PrometheusText0.0.4" => "text/plain;version=0.0.4",
            "PrometheusProto" => return Err(ProtocolError::Unsupported(p.to_string())),
            _ => return Err(ProtocolError::Unknown(p.to_string())),
        };
        out.push_str(media);
        out.push_str(&format!(";q=0.{weight},"));
        weight -= 1;
    }
    out.push_str(&format!("*/*;q=0.{weight}"));
    Ok(out)
}

/// A malformed exposition: the line it was found on and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number where the offending entry starts.
    pub line: usize,
    /// What was expected or invalid.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accept_header_is_what_prometheus_builds() {
        let built = accept_header(&[
            "OpenMetricsText1.0.0",
            "OpenMetricsText0.0.1",
            "PrometheusText1.0.0",
            "PrometheusText0.0.4",
        ]);
        assert_eq!(built.as_deref(), Ok(DEFAULT_ACCEPT_HEADER));
        assert_eq!(
            accept_header(&["PrometheusText0.0.4"]).as_deref(),
            Ok("text/plain;version=0.0.4;q=0.6,*/*;q=0.5")
        );
    }

    #[test]
    fn accept_header_refusals() {
        assert_eq!(
            accept_header(&["PrometheusProto"]),
            Err(ProtocolError::Unsupported("PrometheusProto".into()))
        );
        assert_eq!(
            accept_header(&["Foo"]),
            Err(ProtocolError::Unknown("Foo".into()))
        );
        assert_eq!(
            accept_header(&["PrometheusText0.0.4", "PrometheusText0.0.4"]),
            Err(ProtocolError::Duplicate("PrometheusText0.0.4".into()))
        );
        assert_eq!(accept_header(&[]), Err(ProtocolError::Empty));
    }

    #[test]
    fn content_types() {
        let cases = [
            (
                "text/plain; version=0.0.4; charset=utf-8",
                Some(Format::Text),
            ),
            (
                "text/plain;version=1.0.0;escaping=allow-utf-8",
                Some(Format::Text),
            ),
            ("TEXT/PLAIN", Some(Format::Text)),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Some(Format::OpenMetrics),
            ),
            ("application/openmetrics-text", Some(Format::OpenMetrics)),
            ("", None),
            ("   ", None),
            ("application/json", None),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                None,
            ),
            ("text/plain; version", None),
            ("text/html", None),
        ];
        for (ct, want) in cases {
            assert_eq!(Format::from_content_type(ct), want, "{ct:?}");
        }
    }

    #[test]
    fn error_display() {
        let e = ParseError {
            line: 3,
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "line 3: boom");
    }
}
