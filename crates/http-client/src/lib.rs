//! Turns a Prometheus HTTP client configuration ([`HttpClientConfig`]) into a [`reqwest::Client`]
//! and the credentials every request carries.
//!
//! Scrapes and remote write both talk HTTP with the same `prometheus/common` settings: TLS files,
//! `insecure_skip_verify`, `proxy_url`, `follow_redirects`, `enable_http2`, `basic_auth` and an
//! `Authorization` header. `edgeprom-config` stays free of reqwest, so the translation lives here,
//! once.
//!
//! ```no_run
//! # fn main() -> Result<(), edgeprom_http_client::BuildError> {
//! use std::time::Duration;
//! use edgeprom_config::HttpClientConfig;
//! use edgeprom_http_client::{Auth, build_client};
//!
//! let cfg = HttpClientConfig::default();
//! let client = build_client(&cfg, Duration::from_secs(90))?;
//! let auth = Auth::from_config(&cfg)?;
//! let mut req = client.get("http://localhost:9100/metrics");
//! if let Some(auth) = &auth {
//!     req = auth.apply(req);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgeprom_config::HttpClientConfig;
use reqwest::header::{AUTHORIZATION, HeaderValue};

/// `User-Agent` of every request edgeprom sends.
pub const USER_AGENT: &str = concat!("edgeprom/", env!("CARGO_PKG_VERSION"));

/// How many redirects a client follows when `follow_redirects` is on (Go's `net/http` limit).
const MAX_REDIRECTS: usize = 10;

/// Why a client or its credentials could not be built from the configuration.
///
/// Each message names the configuration field (and file) at fault and already quotes its cause
/// chain (reqwest's own message for a bad PEM file or proxy URL is only "builder error"),
/// because callers show it as one line (a target's `lastError`, a log field); the causes are
/// therefore not also exposed as [`std::error::Error::source`], which would repeat them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A TLS file could not be read.
    #[error("tls_config.{field} {}: {error}", path.display())]
    ReadFile {
        /// `ca_file`, `cert_file` or `key_file`.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// The CA file is not a PEM certificate bundle.
    #[error("tls_config.ca_file {}: {}", path.display(), error_chain(error))]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        error: reqwest::Error,
    },
    /// The CA file holds no certificate at all (Prometheus refuses such a file too: trusting
    /// nothing would fail every TLS handshake with a less helpful message).
    #[error("tls_config.ca_file {}: unable to use specified CA cert: no PEM certificate in the file", path.display())]
    NoCaCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The client certificate and key do not form a usable identity.
    #[error("tls_config: {}", error_chain(.0))]
    Identity(reqwest::Error),
    /// Only one of `cert_file` and `key_file` is set (the config loader refuses this already; a
    /// configuration built in code can still get here).
    #[error("tls_config: cert_file and key_file must be set together")]
    CertWithoutKey,
    /// `proxy_url` is not a usable proxy URL.
    #[error("proxy_url: {}", error_chain(.0))]
    ProxyUrl(reqwest::Error),
    /// The `Authorization` header value has characters a header cannot carry.
    #[error("authorization: invalid credentials")]
    Authorization,
    /// reqwest refused the assembled client (for example the TLS backend failed to start).
    #[error("{}", error_chain(.0))]
    Client(reqwest::Error),
}

/// Builds the client for `cfg`, reading the TLS files now.
///
/// Redirects are followed (up to 10) only with `follow_redirects`; `enable_http2: false` keeps
/// the client on HTTP/1.1; without `proxy_url` the client connects directly, ignoring
/// `HTTP_PROXY` and friends in the environment, as Prometheus does. Idle connections are kept for
/// `pool_idle_timeout`, which callers choose by how often they talk to the same host.
/// Credentials are not part of the client: see [`Auth`].
pub fn build_client(
    cfg: &HttpClientConfig,
    pool_idle_timeout: Duration,
) -> Result<reqwest::Client, BuildError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(MAX_REDIRECTS)
        } else {
            reqwest::redirect::Policy::none()
        })
        .pool_idle_timeout(pool_idle_timeout);
    if !cfg.enable_http2 {
        builder = builder.http1_only();
    }
    builder = tls(builder, cfg)?;
    builder = match &cfg.proxy_url {
        Some(p) => builder.proxy(reqwest::Proxy::all(p).map_err(BuildError::ProxyUrl)?),
        None => builder.no_proxy(),
    };
    builder.build().map_err(BuildError::Client)
}

fn tls(
    mut builder: reqwest::ClientBuilder,
    cfg: &HttpClientConfig,
) -> Result<reqwest::ClientBuilder, BuildError> {
    let tls = &cfg.tls_config;
    if let Some(ca) = &tls.ca_file {
        let pem = read(ca, "ca_file")?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| BuildError::CaBundle {
                path: ca.clone(),
                error,
            })?;
        if certs.is_empty() {
            return Err(BuildError::NoCaCertificate { path: ca.clone() });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            // reqwest wants certificate and key in one PEM buffer.
            let mut pem = read(cert, "cert_file")?;
            pem.push(b'\n');
            pem.extend(read(key, "key_file")?);
            builder =
                builder.identity(reqwest::Identity::from_pem(&pem).map_err(BuildError::Identity)?);
        }
        (None, None) => {}
        _ => return Err(BuildError::CertWithoutKey),
    }
    if tls.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

fn read(path: &Path, field: &'static str) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|error| BuildError::ReadFile {
        field,
        path: path.to_path_buf(),
        error,
    })
}

/// Credentials sent with every request: `basic_auth`, or else an `Authorization` header
/// (`bearer_token` and `bearer_token_file` arrive here as `Authorization: Bearer …`).
#[derive(Clone)]
pub enum Auth {
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password; empty when none is configured.
        password: String,
    },
    /// A ready `Authorization` header value, marked sensitive so it is not logged.
    Header(HeaderValue),
}

impl Auth {
    /// The credentials `cfg` asks for, or `None`. `basic_auth` wins over `authorization`; the
    /// config loader refuses configurations with both.
    pub fn from_config(cfg: &HttpClientConfig) -> Result<Option<Auth>, BuildError> {
        if let Some(basic) = &cfg.basic_auth {
            return Ok(Some(Auth::Basic {
                username: basic.username.clone(),
                password: basic.password.clone().unwrap_or_default(),
            }));
        }
        let Some(a) = &cfg.authorization else {
            return Ok(None);
        };
        let value = format!(
            "{} {}",
            a.kind,
            a.credentials.as_deref().unwrap_or_default()
        );
        let mut h = HeaderValue::from_str(&value).map_err(|_| BuildError::Authorization)?;
        h.set_sensitive(true);
        Ok(Some(Auth::Header(h)))
    }

    /// Adds the credentials to `req`.
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
            Auth::Header(h) => req.header(AUTHORIZATION, h.clone()),
        }
    }
}

/// Secrets stay out of debug output (clients holding an `Auth` derive `Debug`).
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Header(_) => f.write_str("Header(<redacted>)"),
        }
    }
}

/// The error and its causes on one line, `outer: inner: innermost`, like Go's wrapped errors in a
/// target's `lastError`. reqwest's own message is often just "error sending request"; the cause
/// (connection refused, certificate unknown) is further down the chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
    use edgeprom_config::{Authorization, BasicAuth};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const IDLE: Duration = Duration::from_secs(90);

    fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    #[test]
    fn missing_ca_file_names_the_field_and_the_file() {
        let mut cfg = HttpClientConfig::default();
        cfg.tls_config.ca_file = Some(PathBuf::from("/nonexistent/edgeprom-ca.pem"));
        let e = build_client(&cfg, IDLE).expect_err("no such file");
        let msg = e.to_string();
        assert!(
            msg.starts_with("tls_config.ca_file /nonexistent/edgeprom-ca.pem: "),
            "{msg}"
        );
    }

    /// reqwest's own message for a bad bundle is just "builder error"; the cause must show.
    #[test]
    fn malformed_ca_bundle_says_what_is_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pem = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        let ca = write_file(&dir, "ca.pem", pem);
        let mut cfg = HttpClientConfig::default();
        cfg.tls_config.ca_file = Some(ca.clone());
        let msg = build_client(&cfg, IDLE).expect_err("bad PEM").to_string();
        assert!(
            msg.starts_with(&format!("tls_config.ca_file {}: ", ca.display())),
            "{msg}"
        );
        assert!(msg.contains("invalid certificate encoding"), "{msg}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = write_file(&dir, "ca.pem", "hello\n");
        let mut cfg = HttpClientConfig::default();
        cfg.tls_config.ca_file = Some(ca.clone());
        let msg = build_client(&cfg, IDLE)
            .expect_err("no certificate")
            .to_string();
        assert_eq!(
            msg,
            format!(
                "tls_config.ca_file {}: unable to use specified CA cert: no PEM certificate in the file",
                ca.display()
            )
        );
    }

    #[test]
    fn missing_key_file_names_the_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = HttpClientConfig::default();
        // Never parsed: the key is read before the identity is.
        cfg.tls_config.cert_file = Some(write_file(&dir, "cert.pem", "certificate"));
        cfg.tls_config.key_file = Some(dir.path().join("missing-key.pem"));
        let msg = build_client(&cfg, IDLE).expect_err("no key").to_string();
        assert!(msg.starts_with("tls_config.key_file "), "{msg}");
        assert!(msg.contains("missing-key.pem"), "{msg}");
    }

    #[test]
    fn certificate_without_key_is_refused() {
        let mut cfg = HttpClientConfig::default();
        cfg.tls_config.cert_file = Some(PathBuf::from("cert.pem"));
        let e = build_client(&cfg, IDLE).expect_err("cert alone");
        assert!(matches!(e, BuildError::CertWithoutKey), "{e}");
    }

    #[test]
    fn bad_proxy_url_is_refused() {
        let cfg = HttpClientConfig {
            proxy_url: Some("not a url".into()),
            ..HttpClientConfig::default()
        };
        let msg = build_client(&cfg, IDLE).expect_err("bad url").to_string();
        assert!(msg.starts_with("proxy_url: builder error: "), "{msg}");
    }

    /// Accepts one connection, answers 200 and returns the request's head.
    async fn answer_once(listener: TcpListener) -> String {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.expect("read");
            assert!(n > 0, "connection closed before the request head ended");
            head.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        String::from_utf8(head).expect("utf-8 head")
    }

    #[tokio::test]
    async fn proxy_url_sends_requests_through_the_proxy() {
        let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let cfg = HttpClientConfig {
            proxy_url: Some(format!("http://{}", proxy.local_addr().expect("addr"))),
            ..HttpClientConfig::default()
        };
        let client = build_client(&cfg, IDLE).expect("client");
        let seen = tokio::spawn(answer_once(proxy));
        // `.invalid` never resolves: the answer can only have come from the proxy.
        let resp = client
            .get("http://target.invalid/metrics")
            .send()
            .await
            .expect("sent through the proxy");
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
        let head = seen.await.expect("proxy task");
        assert!(
            head.starts_with("GET http://target.invalid/metrics HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("user-agent: {USER_AGENT}\r\n")),
            "{head}"
        );
    }

    /// A configuration with `authorization: {type: Bearer, credentials: …}`.
    fn bearer(credentials: &str) -> HttpClientConfig {
        HttpClientConfig {
            authorization: Some(Authorization {
                kind: "Bearer".into(),
                credentials: Some(credentials.into()),
                credentials_file: None,
            }),
            ..HttpClientConfig::default()
        }
    }

    #[tokio::test]
    async fn credentials_are_sent_as_configured() {
        let basic = HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "user".into(),
                password: Some("pass".into()),
                password_file: None,
            }),
            ..HttpClientConfig::default()
        };
        for (cfg, want) in [
            (basic, "authorization: Basic dXNlcjpwYXNz\r\n"),
            (bearer("token"), "authorization: Bearer token\r\n"),
        ] {
            let target = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}/metrics", target.local_addr().expect("addr"));
            let seen = tokio::spawn(answer_once(target));
            let client = build_client(&cfg, IDLE).expect("client");
            let auth = Auth::from_config(&cfg).expect("auth").expect("some auth");
            auth.apply(client.get(&url)).send().await.expect("sent");
            let head = seen.await.expect("target task");
            assert!(head.contains(want), "{head}");
        }
    }

    #[test]
    fn credentials_a_header_cannot_carry_are_refused() {
        let e = Auth::from_config(&bearer("line\nbreak")).expect_err("newline");
        assert_eq!(e.to_string(), "authorization: invalid credentials");
        assert!(
            Auth::from_config(&HttpClientConfig::default())
                .expect("none")
                .is_none()
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let auth = Auth::Basic {
            username: "user".into(),
            password: "secret".into(),
        };
        assert!(!format!("{auth:?}").contains("secret"));
        let header = Auth::Header(HeaderValue::from_static("Bearer secret"));
        assert!(!format!("{header:?}").contains("secret"));
    }

    #[test]
    fn error_chain_joins_the_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
