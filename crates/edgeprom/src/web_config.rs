//! `--web.config.file`: TLS and HTTP basic authentication for the server's endpoints, configured
//! as Prometheus's exporter-toolkit configures them.
//!
//! Supported: `tls_server_config` (`cert_file`/`key_file` or inline `cert`/`key`, `min_version`,
//! `max_version`, `prefer_server_cipher_suites`, and client certificates verified against
//! `client_ca_file`/`client_ca` with `client_auth_type` `RequireAndVerifyClientCert` or
//! `VerifyClientCertIfGiven`), `basic_auth_users` (bcrypt hashes), and `http_server_config`
//! (`http2`, `headers`). Everything else that exporter-toolkit knows is rejected with an error
//! rather than silently ignored, so a configuration never looks more secure than it is.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// Why the web configuration file cannot be used; always names the file.
#[derive(Debug, thiserror::Error)]
#[error("error loading web config file {}: {kind}", file.display())]
pub struct WebConfigError {
    /// The `--web.config.file` given.
    pub file: PathBuf,
    /// What is wrong with it.
    pub kind: WebConfigErrorKind,
}

/// What is wrong with a web configuration file.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigErrorKind {
    /// The file itself or a file it names could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has fields that do not exist.
    #[error("{0}")]
    Yaml(Box<serde_saphyr::Error>),
    /// A field exporter-toolkit knows but edgeprom does not implement.
    #[error("{0} is not supported by edgeprom")]
    Unsupported(&'static str),
    /// A field has a value that is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// rustls refused the certificate, key or client CAs.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A validated web configuration, ready to serve with.
#[derive(Clone)]
pub struct WebConfig {
    /// The rustls server configuration when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic-auth users when authentication is on.
    pub auth: Option<Arc<BasicAuth>>,
    /// Extra response headers from `http_server_config.headers`.
    pub headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    /// Whether TLS client certificates are verified.
    pub client_certs: bool,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl WebConfig {
    /// Reads and validates `file`, loading the certificates it names; relative paths are
    /// resolved against the file's directory, as Prometheus resolves them.
    pub fn load(file: &Path) -> Result<Self, WebConfigError> {
        Self::load_inner(file).map_err(|kind| WebConfigError {
            file: file.to_path_buf(),
            kind,
        })
    }

    fn load_inner(file: &Path) -> Result<Self, WebConfigErrorKind> {
        let text = std::fs::read_to_string(file).map_err(|source| WebConfigErrorKind::Read {
            path: file.to_path_buf(),
            source,
        })?;
        // An empty document is a valid "nothing configured", as it is for Prometheus.
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| WebConfigErrorKind::Yaml(Box::new(e)))?
        };
        if raw.rate_limit.is_some() {
            return Err(WebConfigErrorKind::Unsupported("rate_limit"));
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        let http = raw.http_server_config.unwrap_or_default();
        let headers = validate_headers(&http.headers)?;
        let http2 = http.http2.unwrap_or(true);
        let (tls, client_certs) = match raw.tls_server_config {
            Some(t) if t.is_enabled() => {
                let (cfg, client) = build_tls(&t, dir, http2)?;
                (Some(Arc::new(cfg)), client)
            }
            Some(t) => {
                t.reject_without_tls()?;
                (None, false)
            }
            None => (None, false),
        };
        let auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users)?)),
            _ => None,
        };
        Ok(WebConfig {
            tls,
            auth,
            headers: Arc::new(headers),
            client_certs,
        })
    }
}

impl RawTls {
    fn is_enabled(&self) -> bool {
        self.cert_file.is_some()
            || self.key_file.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.client_ca_file.is_some()
            || self.client_ca.is_some()
            || self.client_auth_type.is_some()
    }

    /// Fields that only mean something with TLS on must not be set without it.
    fn reject_without_tls(&self) -> Result<(), WebConfigErrorKind> {
        if !self.cipher_suites.is_empty()
            || !self.curve_preferences.is_empty()
            || self.client_allowed_sans.is_some()
            || self.min_version.is_some()
            || self.max_version.is_some()
        {
            return Err(WebConfigErrorKind::Invalid(
                "tls_server_config has options but neither cert nor key".into(),
            ));
        }
        Ok(())
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, WebConfigErrorKind> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| WebConfigErrorKind::Read { path, source })
}

fn pem_source(
    dir: &Path,
    file: &Option<String>,
    inline: &Option<String>,
    what: &str,
) -> Result<Option<Vec<u8>>, WebConfigErrorKind> {
    match (file, inline) {
        (Some(_), Some(_)) => Err(WebConfigErrorKind::Invalid(format!(
            "at most one of {what} and {what}_file must be configured"
        ))),
        (Some(f), None) if !f.is_empty() => read(dir, f).map(Some),
        (None, Some(text)) if !text.is_empty() => Ok(Some(text.as_bytes().to_vec())),
        _ => Ok(None),
    }
}

fn tls_version(
    name: &Option<String>,
    default: &'static rustls::SupportedProtocolVersion,
) -> Result<&'static rustls::SupportedProtocolVersion, WebConfigErrorKind> {
    match name.as_deref() {
        None => Ok(default),
        Some("TLS12") => Ok(&rustls::version::TLS12),
        Some("TLS13") => Ok(&rustls::version::TLS13),
        Some(v @ ("TLS10" | "TLS11")) => Err(WebConfigErrorKind::Invalid(format!(
            "TLS version {v} is not supported by edgeprom (only TLS12 and TLS13)"
        ))),
        Some(v) => Err(WebConfigErrorKind::Invalid(format!(
            "unknown TLS version: {v}"
        ))),
    }
}

fn build_tls(
    t: &RawTls,
    dir: &Path,
    http2: bool,
) -> Result<(rustls::ServerConfig, bool), WebConfigErrorKind> {
    if !t.cipher_suites.is_empty() {
        return Err(WebConfigErrorKind::Unsupported(
            "tls_server_config.cipher_suites",
        ));
    }
    if !t.curve_preferences.is_empty() {
        return Err(WebConfigErrorKind::Unsupported(
            "tls_server_config.curve_preferences",
        ));
    }
    if t.client_allowed_sans.is_some() {
        return Err(WebConfigErrorKind::Unsupported(
            "tls_server_config.client_allowed_sans",
        ));
    }
    let cert_pem = pem_source(dir, &t.cert_file, &t.cert, "cert")?
        .ok_or_else(|| WebConfigErrorKind::Invalid("missing one of cert or cert_file".into()))?;
    let key_pem = pem_source(dir, &t.key_file, &t.key, "key")?
        .ok_or_else(|| WebConfigErrorKind::Invalid("missing one of key or key_file".into()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebConfigErrorKind::Invalid(format!("parsing the certificate: {e}")))?;
    if chain.is_empty() {
        return Err(WebConfigErrorKind::Invalid(
            "the certificate holds no PEM CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| WebConfigErrorKind::Invalid(format!("parsing the private key: {e}")))?;

    let min = tls_version(&t.min_version, &rustls::version::TLS12)?;
    let max = tls_version(&t.max_version, &rustls::version::TLS13)?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        &rustls::version::TLS12 as &'static rustls::SupportedProtocolVersion,
        &rustls::version::TLS13,
    ]
    .into_iter()
    .filter(|v| version_rank(v) >= version_rank(min) && version_rank(v) <= version_rank(max))
    .collect();
    if versions.is_empty() {
        return Err(WebConfigErrorKind::Invalid(
            "min_version is above max_version".into(),
        ));
    }

    // An explicit provider, because the workspace may link more than one and rustls then
    // refuses to pick a process default on its own.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)?;

    let ca_pem = pem_source(dir, &t.client_ca_file, &t.client_ca, "client_ca")?;
    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let (builder, client_certs) = match (auth_type, ca_pem) {
        ("" | "NoClientCert", None) => (builder.with_no_client_auth(), false),
        ("" | "NoClientCert", Some(_)) => {
            return Err(WebConfigErrorKind::Invalid(
                "client CA's have been configured without a Client Auth Policy".into(),
            ));
        }
        (kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven"), Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca) {
                let c = c.map_err(|e| {
                    WebConfigErrorKind::Invalid(format!("parsing the client CA: {e}"))
                })?;
                roots.add(c)?;
            }
            let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            if kind == "VerifyClientCertIfGiven" {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| {
                WebConfigErrorKind::Invalid(format!("client certificate verifier: {e}"))
            })?;
            (builder.with_client_cert_verifier(verifier), true)
        }
        ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven", None) => {
            return Err(WebConfigErrorKind::Invalid(format!(
                "client_auth_type {auth_type} needs client_ca_file or client_ca"
            )));
        }
        ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert", _) => {
            return Err(WebConfigErrorKind::Invalid(format!(
                "client_auth_type {auth_type} (unverified client certificates) is not supported \
                 by edgeprom; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
            )));
        }
        (other, _) => {
            return Err(WebConfigErrorKind::Invalid(format!(
                "invalid client_auth_type: {other}"
            )));
        }
    };
    let mut cfg = builder.with_single_cert(chain, key)?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((cfg, client_certs))
}

fn version_rank(v: &rustls::SupportedProtocolVersion) -> u8 {
    if v.version == rustls::ProtocolVersion::TLSv1_3 {
        13
    } else {
        12
    }
}

/// The headers exporter-toolkit lets a web config set, with the values it allows (`None`: any).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

fn validate_headers(
    headers: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigErrorKind> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let Some((canonical, allowed)) = ALLOWED_HEADERS
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(name))
        else {
            return Err(WebConfigErrorKind::Invalid(format!(
                "HTTP header {name:?} can not be configured"
            )));
        };
        if let Some(allowed) = allowed
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
        {
            return Err(WebConfigErrorKind::Invalid(format!(
                "invalid value for {canonical}: {value:?}; allowed: {allowed:?}"
            )));
        }
        let name = HeaderName::from_bytes(canonical.as_bytes())
            .map_err(|e| WebConfigErrorKind::Invalid(format!("header {canonical}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| WebConfigErrorKind::Invalid(format!("header {canonical}: {e}")))?;
        out.push((name, value));
    }
    Ok(out)
}

/// How many successful (user, password) checks are remembered; bounded so that a client trying
/// many passwords cannot grow memory, and so small that clearing it when full costs nothing.
const AUTH_CACHE_SIZE: usize = 100;

/// HTTP basic-auth users with bcrypt-hashed passwords.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Successful checks, so repeated requests (Grafana sends many) skip the deliberately slow
    /// bcrypt. Only successes are kept: a wrong password always pays the full price.
    cache: Mutex<HashSet<(String, String)>>,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> Result<Self, WebConfigErrorKind> {
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(WebConfigErrorKind::Invalid(format!(
                    "basic_auth_users: user name {user:?} contains ':'"
                )));
            }
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                WebConfigErrorKind::Invalid(format!(
                    "basic_auth_users: {user}: not a bcrypt hash: {e}"
                ))
            })?;
        }
        Ok(BasicAuth {
            users,
            cache: Mutex::new(HashSet::new()),
        })
    }

    /// Whether `user` with `password` is allowed in; slow (bcrypt) unless recently seen.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let key = (user.to_string(), password.to_string());
        if self.cache.lock().is_ok_and(|c| c.contains(&key)) {
            return true;
        }
        let ok = match self.users.get(user) {
            Some(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            None => {
                // Pay for a bcrypt anyway, so response time does not tell which users exist.
                if let Some(hash) = self.users.values().next() {
                    let _ = bcrypt::verify(password, hash);
                }
                false
            }
        };
        if ok && let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= AUTH_CACHE_SIZE {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }
}

/// Decodes an `Authorization: Basic …` header into (user, password).
fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Middleware: every request must carry valid basic-auth credentials.
pub async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    req: Request,
    next: Next,
) -> Response {
    let allowed = match basic_credentials(&req) {
        Some((user, password)) => {
            let auth = auth.clone();
            // bcrypt takes tens of milliseconds of CPU; keep it off the async workers.
            tokio::task::spawn_blocking(move || auth.check(&user, &password))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    if allowed {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response()
    }
}

/// Middleware: adds the configured `http_server_config.headers` to every response.
pub async fn add_headers(
    State(headers): State<Arc<Vec<(HeaderName, HeaderValue)>>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    for (name, value) in headers.iter() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// How long a client has to finish the TLS handshake; bounded so that idle connections cannot
/// pile up before they ever reach the HTTP server.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that hands axum only connections that completed a TLS handshake. Handshakes run
/// in their own tasks so one slow client does not hold up the others.
pub struct TlsListener {
    local: SocketAddr,
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Starts accepting TCP connections on `listener` and handshaking with `config`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and similar: back off rather than spin.
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Once axum has dropped the listener (shutdown), stop accepting.
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local, rx })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this listener is gone, so this never resolves.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgeprom-webcfg-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn empty_file_means_nothing_configured() {
        let d = dir("empty");
        let cfg = WebConfig::load(&write(&d, "web.yml", "")).expect("load");
        assert!(cfg.tls.is_none() && cfg.auth.is_none());
    }

    #[test]
    fn unknown_field_is_an_error_naming_the_file() {
        let d = dir("unknown");
        let f = write(&d, "web.yml", "tls_server_config:\n  bogus: 1\n");
        let err = WebConfig::load(&f).expect_err("must fail").to_string();
        assert!(err.contains("web.yml"), "{err}");
    }

    #[test]
    fn unsupported_and_invalid_fields_are_rejected() {
        let d = dir("rejected");
        for text in [
            "rate_limit:\n  burst: 1\n",
            "http_server_config:\n  headers:\n    Server: x\n",
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "basic_auth_users:\n  alice: plain\n",
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
            "tls_server_config:\n  min_version: TLS12\n",
        ] {
            let f = write(&d, "web.yml", text);
            assert!(WebConfig::load(&f).is_err(), "accepted: {text}");
        }
    }

    #[test]
    fn auth_checks_and_caches() {
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let auth = BasicAuth::new(BTreeMap::from([("alice".to_string(), hash)])).expect("auth");
        assert!(!auth.check("alice", "wrong"));
        assert!(!auth.check("bob", "secret"));
        assert!(auth.check("alice", "secret"));
        assert!(
            auth.cache
                .lock()
                .is_ok_and(|c| c.contains(&("alice".into(), "secret".into())))
        );
        assert!(auth.check("alice", "secret"));
    }
}
