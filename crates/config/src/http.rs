//! The HTTP client part of a scrape config (`prometheus/common` `config.HTTPClientConfig`).

use std::path::PathBuf;

/// How a scrape authenticates and connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header; `bearer_token`/`bearer_token_file` end up here as Prometheus
    /// converts them.
    pub authorization: Option<Authorization>,
    /// TLS settings.
    pub tls_config: TlsConfig,
    /// Follow HTTP redirects; true.
    pub follow_redirects: bool,
    /// Allow HTTP/2; true.
    pub enable_http2: bool,
    /// Proxy for scrapes.
    pub proxy_url: Option<String>,
}

impl Default for HttpClientConfig {
    fn default() -> HttpClientConfig {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
        }
    }
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BasicAuth {
    /// User name (read from `username_file` at load when that is used).
    pub username: String,
    /// Password: as written, or the trimmed content of `password_file` read at load.
    pub password: Option<String>,
    /// The password file, resolved against the config directory, for re-reading on rotation.
    pub password_file: Option<PathBuf>,
}

/// An `Authorization: TYPE CREDENTIALS` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The scheme; `Bearer` by default.
    pub kind: String,
    /// Credentials: as written, or the trimmed content of `credentials_file` read at load.
    pub credentials: Option<String>,
    /// The credentials file, resolved against the config directory, for re-reading on rotation.
    pub credentials_file: Option<PathBuf>,
}

/// A TLS protocol version bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLS10`
    Tls10,
    /// `TLS11`
    Tls11,
    /// `TLS12`
    Tls12,
    /// `TLS13`
    Tls13,
}

impl TlsVersion {
    /// Parses Prometheus's spelling (`TLS12`).
    pub fn parse(s: &str) -> Result<TlsVersion, String> {
        Ok(match s {
            "TLS10" => TlsVersion::Tls10,
            "TLS11" => TlsVersion::Tls11,
            "TLS12" => TlsVersion::Tls12,
            "TLS13" => TlsVersion::Tls13,
            _ => return Err(format!("unknown TLS version: {s}")),
        })
    }
}

/// TLS client settings; file paths are resolved against the config directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// CA bundle to verify the target with.
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Client key.
    pub key_file: Option<PathBuf>,
    /// Server name for SNI and verification.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// Lowest TLS version allowed.
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version allowed.
    pub max_version: Option<TlsVersion>,
}
