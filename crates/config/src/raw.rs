//! The YAML shapes exactly as written, before defaults and validation. Values that validation
//! may reject are `Spanned` so the error can point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::bytesize::ByteSize;
use crate::duration::Duration;
use crate::relabel::Action;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub global: Option<RawGlobal>,
    pub rule_files: Option<Vec<S<String>>>,
    pub scrape_config_files: Option<Vec<S<String>>>,
    pub scrape_configs: Option<Vec<S<RawScrape>>>,
    pub alerting: Option<RawAlerting>,
    pub storage: Option<RawStorage>,
    pub remote_write: Option<Vec<S<RawRemoteWrite>>>,
}

/// One `remote_write` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteWrite {
    pub url: Option<S<String>>,
    pub remote_timeout: Option<S<Duration>>,
    pub headers: Option<S<BTreeMap<String, String>>>,
    pub write_relabel_configs: Option<Vec<S<RawRelabel>>>,
    pub name: Option<S<String>>,
    pub send_exemplars: Option<bool>,
    pub send_native_histograms: Option<S<bool>>,
    pub round_robin_dns: Option<S<bool>>,
    pub protobuf_message: Option<S<String>>,
    pub queue_config: Option<S<RawQueue>>,
    pub metadata_config: Option<RawMetadata>,

    // HTTP client settings, inlined as in the scrape config.
    pub basic_auth: Option<S<RawBasicAuth>>,
    pub authorization: Option<S<RawAuthorization>>,
    pub bearer_token: Option<S<String>>,
    pub bearer_token_file: Option<S<String>>,
    pub tls_config: Option<RawTls>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub proxy_url: Option<S<String>>,
}

/// `remote_write[].queue_config`; integers signed so that negative values get Prometheus's
/// message rather than a type error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub capacity: Option<i64>,
    pub max_shards: Option<i64>,
    pub min_shards: Option<i64>,
    pub max_samples_per_send: Option<i64>,
    pub batch_send_deadline: Option<Duration>,
    pub min_backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    pub retry_on_http_429: Option<bool>,
    pub sample_age_limit: Option<Duration>,
}

/// `remote_write[].metadata_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetadata {
    pub send: Option<bool>,
    pub send_interval: Option<Duration>,
    pub max_samples_per_send: Option<S<i64>>,
}

/// The `storage` section; only `exemplars` is implemented (`tsdb` is reported unsupported).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub exemplars: Option<RawExemplars>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExemplars {
    pub max_exemplars: Option<i64>,
}

/// The `alerting` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerting {
    pub alertmanagers: Option<Vec<S<RawAlertmanager>>>,
}

/// One `alerting.alertmanagers` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlertmanager {
    pub scheme: Option<S<String>>,
    pub path_prefix: Option<String>,
    pub timeout: Option<S<Duration>>,
    pub api_version: Option<S<String>>,
    pub static_configs: Option<Vec<RawTargetGroup>>,
    /// Read only to type-check them: the notifier's client follows Prometheus's defaults.
    #[allow(dead_code)]
    pub follow_redirects: Option<bool>,
    #[allow(dead_code)]
    pub enable_http2: Option<bool>,
}

/// A file named by `scrape_config_files` holds only `scrape_configs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScrapeFile {
    pub scrape_configs: Option<Vec<S<RawScrape>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub scrape_interval: Option<S<Duration>>,
    pub scrape_timeout: Option<S<Duration>>,
    pub scrape_protocols: Option<S<Vec<String>>>,
    pub evaluation_interval: Option<S<Duration>>,
    pub rule_query_offset: Option<S<Duration>>,
    pub external_labels: Option<S<BTreeMap<String, String>>>,
    pub body_size_limit: Option<ByteSize>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub keep_dropped_targets: Option<u64>,
    pub metric_name_validation_scheme: Option<S<String>>,
    pub metric_name_escaping_scheme: Option<S<String>>,
    pub convert_classic_histograms_to_nhcb: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScrape {
    pub job_name: Option<S<String>>,
    pub honor_labels: Option<bool>,
    pub honor_timestamps: Option<bool>,
    pub track_timestamps_staleness: Option<bool>,
    pub params: Option<BTreeMap<String, Vec<String>>>,
    pub scrape_interval: Option<S<Duration>>,
    pub scrape_timeout: Option<S<Duration>>,
    pub scrape_protocols: Option<S<Vec<String>>>,
    pub fallback_scrape_protocol: Option<S<String>>,
    /// Read only to type-check it: without native histograms, classic ones are always scraped.
    #[allow(dead_code)]
    pub always_scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<S<bool>>,
    pub metrics_path: Option<String>,
    pub scheme: Option<S<String>>,
    pub enable_compression: Option<bool>,
    pub body_size_limit: Option<ByteSize>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub keep_dropped_targets: Option<u64>,
    pub metric_name_validation_scheme: Option<S<String>>,
    pub metric_name_escaping_scheme: Option<S<String>>,

    // HTTP client settings, inlined in Prometheus's scrape config.
    pub basic_auth: Option<S<RawBasicAuth>>,
    pub authorization: Option<S<RawAuthorization>>,
    pub bearer_token: Option<S<String>>,
    pub bearer_token_file: Option<S<String>>,
    pub tls_config: Option<RawTls>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub proxy_url: Option<S<String>>,

    pub static_configs: Option<Vec<RawTargetGroup>>,
    pub file_sd_configs: Option<Vec<S<RawFileSd>>>,
    pub relabel_configs: Option<Vec<S<RawRelabel>>>,
    pub metric_relabel_configs: Option<Vec<S<RawRelabel>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub username: Option<String>,
    pub username_file: Option<S<String>>,
    pub password: Option<String>,
    pub password_file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub min_version: Option<S<String>>,
    pub max_version: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTargetGroup {
    pub targets: Option<Vec<S<String>>>,
    pub labels: Option<S<BTreeMap<String, String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSd {
    pub files: Option<Vec<S<String>>>,
    pub refresh_interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelabel {
    pub source_labels: Option<Vec<String>>,
    pub separator: Option<String>,
    pub regex: Option<S<String>>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<Action>,
}

/// Fields Prometheus 3.4 knows that edgeprom does not implement, per place in the file. An
/// unknown-field error on one of these becomes a clear "not supported yet" error instead.
pub(crate) fn unsupported_field(path: &str, field: &str) -> bool {
    const TOP: &[&str] = &["remote_read", "tracing", "otlp", "runtime"];
    const GLOBAL: &[&str] = &["query_log_file", "scrape_failure_log_file"];
    const SCRAPE: &[&str] = &[
        "oauth2",
        "no_proxy",
        "proxy_from_environment",
        "proxy_connect_header",
        "http_headers",
        "native_histogram_bucket_limit",
        "native_histogram_min_bucket_factor",
        "scrape_failure_log_file",
    ];
    const ALERTMANAGER: &[&str] = &[
        "basic_auth",
        "authorization",
        "oauth2",
        "tls_config",
        "proxy_url",
        "no_proxy",
        "proxy_from_environment",
        "proxy_connect_header",
        "http_headers",
        "relabel_configs",
        "alert_relabel_configs",
        "sigv4",
    ];
    const REMOTE_WRITE: &[&str] = &[
        "oauth2",
        "sigv4",
        "azuread",
        "google_iam",
        "no_proxy",
        "proxy_from_environment",
        "proxy_connect_header",
        "http_headers",
    ];
    const TLS: &[&str] = &["ca", "cert", "key", "ca_ref", "cert_ref", "key_ref"];
    const AUTH: &[&str] = &["username_ref", "password_ref", "credentials_ref"];
    // The path ends with the offending field; what precedes it says where it sits.
    let parent = path
        .strip_suffix(field)
        .unwrap_or(path)
        .trim_end_matches('.');
    if parent.is_empty() {
        return TOP.contains(&field);
    }
    if parent == "global" {
        return GLOBAL.contains(&field);
    }
    if parent == "alerting" {
        return field == "alert_relabel_configs";
    }
    if parent.starts_with("alerting.alertmanagers[") && parent.ends_with(']') {
        return ALERTMANAGER.contains(&field) || field.ends_with("_sd_configs");
    }
    if parent.starts_with("remote_write[") && parent.ends_with(']') {
        return REMOTE_WRITE.contains(&field);
    }
    if parent == "storage" {
        return field == "tsdb";
    }
    let in_scrape = parent.starts_with("scrape_configs[") && parent.ends_with(']');
    if in_scrape {
        return SCRAPE.contains(&field) || field.ends_with("_sd_configs");
    }
    if parent.ends_with(".tls_config") {
        return TLS.contains(&field);
    }
    if parent.ends_with(".basic_auth") || parent.ends_with(".authorization") {
        return AUTH.contains(&field);
    }
    false
}
