//! The HTTP side of a scrape: one client per job built from its `HttpClientConfig`, a request with
//! Prometheus's headers, and a body read that stops at `body_size_limit`.

use std::time::Duration;

use edgeprom_config::{HttpClientConfig, ScrapeConfig};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, HeaderValue};

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

const USER_AGENT: &str = concat!("edgeprom/", env!("CARGO_PKG_VERSION"));

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
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(if http.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            // Scrapes are periodic: keep connections to targets open between them.
            .pool_idle_timeout(Duration::from_secs(300));
        if !http.enable_http2 {
            builder = builder.http1_only();
        }
        builder = tls(builder, http)?;
        if let Some(proxy) = &http.proxy_url {
            builder =
                builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| format!("proxy_url: {e}"))?);
        } else {
            builder = builder.no_proxy();
        }
        Ok(JobClient {
            client: builder.build().map_err(|e| e.to_string())?,
            accept,
            identity_encoding: !cfg.enable_compression,
            auth: authorization(http)?,
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
        match &self.auth {
            Some(Auth::Basic { username, password }) => {
                req = req.basic_auth(username, Some(password));
            }
            Some(Auth::Header(h)) => req = req.header(AUTHORIZATION, h.clone()),
            None => {}
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

/// Credentials sent with every request of the job.
enum Auth {
    Basic { username: String, password: String },
    Header(HeaderValue),
}

fn authorization(http: &HttpClientConfig) -> Result<Option<Auth>, String> {
    if let Some(basic) = &http.basic_auth {
        return Ok(Some(Auth::Basic {
            username: basic.username.clone(),
            password: basic.password.clone().unwrap_or_default(),
        }));
    }
    let Some(a) = &http.authorization else {
        return Ok(None);
    };
    let value = format!("{} {}", a.kind, a.credentials.clone().unwrap_or_default());
    let mut h = HeaderValue::from_str(&value).map_err(|_| "authorization: invalid credentials")?;
    h.set_sensitive(true);
    Ok(Some(Auth::Header(h)))
}

fn tls(
    mut builder: reqwest::ClientBuilder,
    http: &HttpClientConfig,
) -> Result<reqwest::ClientBuilder, String> {
    let tls = &http.tls_config;
    if let Some(ca) = &tls.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| format!("tls_config.ca_file {}: {e}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("tls_config.ca_file {}: {e}", ca.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert)
                .map_err(|e| format!("tls_config.cert_file {}: {e}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| format!("tls_config.key_file {}: {e}", key.display()))?,
            );
            builder = builder.identity(
                reqwest::Identity::from_pem(&pem).map_err(|e| format!("tls_config: {e}"))?,
            );
        }
        (None, None) => {}
        _ => return Err("tls_config: cert_file and key_file must be set together".into()),
    }
    if tls.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// The error and its causes on one line, like Go's wrapped errors read in `lastError`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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
