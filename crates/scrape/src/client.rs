//! The HTTP side of a scrape: one client per job built from its `HttpClientConfig`, a request with
//! Prometheus's headers, and a body read that stops at `body_size_limit`.

use std::time::Duration;

use edgeprom_config::ScrapeConfig;
use edgeprom_http_client::{Auth, build_client, error_chain};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, HeaderValue};

use crate::scrape_loop::ScrapeError;

/// The body size limit of a job whose configuration sets none (`body_size_limit` unset or 0,
/// which Prometheus takes as unlimited): an edge node has nobody to restart it after a target
/// answers with gigabytes, so a scrape stops reading at 256 MiB and fails with `up == 0`. A larger
/// `body_size_limit` in the configuration raises it.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 256 << 20;

/// The limit a job applies: its configured one, or [`DEFAULT_BODY_SIZE_LIMIT`] when none is set.
pub(crate) fn effective_body_size_limit(configured: u64) -> u64 {
    if configured == 0 {
        DEFAULT_BODY_SIZE_LIMIT
    } else {
        configured
    }
}

/// A job's HTTP client and the request settings every target of the job shares.
pub(crate) struct JobClient {
    client: reqwest::Client,
    accept: HeaderValue,
    identity_encoding: bool,
    auth: Option<Auth>,
    body_size_limit: u64,
}

/// What a successful fetch returns.
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

impl JobClient {
    /// Builds the client; fails on unreadable or invalid TLS material or credentials files.
    pub(crate) fn new(cfg: &ScrapeConfig) -> Result<JobClient, String> {
        let http = &cfg.http;
        let protocols: Vec<&str> = cfg.scrape_protocols.iter().map(|p| p.as_str()).collect();
        let accept = edgeprom_exposition::accept_header(&protocols).map_err(|e| e.to_string())?;
        let accept = HeaderValue::from_str(&accept).map_err(|e| e.to_string())?;
        // Scrapes are periodic: keep connections to targets open between them.
        let client = build_client(http, Duration::from_secs(300)).map_err(|e| e.to_string())?;
        Ok(JobClient {
            client,
            accept,
            identity_encoding: !cfg.enable_compression,
            auth: Auth::from_config(http).map_err(|e| e.to_string())?,
            body_size_limit: effective_body_size_limit(cfg.body_size_limit),
        })
    }

    /// Fetches `url`, reading at most `body_size_limit` bytes of (decompressed) body.
    pub(crate) async fn fetch(&self, url: &str, timeout: Duration) -> Result<Fetched, ScrapeError> {
        let mut req = self
            .client
            .get(url)
            .header(ACCEPT, self.accept.clone())
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            );
        if self.identity_encoding {
            req = req.header(ACCEPT_ENCODING, "identity");
        }
        if let Some(auth) = &self.auth {
            req = auth.apply(req);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ScrapeError::Http(error_chain(&e)))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(ScrapeError::Status(status.to_string()));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = self.body_size_limit;
        let mut body = Vec::with_capacity(
            resp.content_length()
                .map_or(64 * 1024, |n| {
                    n.min(if limit > 0 { limit } else { n }) as usize
                })
                .min(16 << 20),
        );
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ScrapeError::Http(error_chain(&e)))?;
            if limit > 0 && body.len() as u64 + chunk.len() as u64 > limit {
                return Err(ScrapeError::BodySizeLimit(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, content_type })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue #12): with no `body_size_limit` in the configuration a target could make
    /// a scrape read a body of any size into memory, as Prometheus does with its default of 0.
    #[test]
    fn unset_body_size_limit_means_the_safe_default() {
        assert_eq!(effective_body_size_limit(0), DEFAULT_BODY_SIZE_LIMIT);
        assert_eq!(effective_body_size_limit(100 << 10), 100 << 10);
        assert_eq!(effective_body_size_limit(1 << 40), 1 << 40);
    }
}
