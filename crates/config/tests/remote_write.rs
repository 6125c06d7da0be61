//! `remote_write`: Prometheus's defaults, checks and messages (its `config/testdata/remote_write_*`
//! cases), names, and the platform's one remote-write shape.

use std::path::Path;

use edgeprom_config::{
    Config, ConfigError, Duration, ErrorKind, MetadataConfig, QueueConfig, RemoteWriteMessage,
};
use edgeprom_model::Labels;

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    Config::parse(yaml, Path::new("/cfg/prometheus.yml"))
}

fn err(yaml: &str) -> ConfigError {
    match parse(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_are_prometheus_defaults() {
    let c = parse("remote_write:\n  - url: http://rw.example:9090/api/v1/write\n").expect("valid");
    assert_eq!(c.remote_write.len(), 1);
    let rw = &c.remote_write[0];
    assert_eq!(rw.url, "http://rw.example:9090/api/v1/write");
    assert_eq!(rw.remote_timeout, Duration::from_secs(30));
    assert_eq!(rw.protobuf_message, RemoteWriteMessage::V1);
    assert!(!rw.send_exemplars);
    assert!(rw.headers.is_empty());
    assert!(rw.write_relabel_configs.is_empty());
    assert!(
        !rw.http.enable_http2,
        "Prometheus turns HTTP/2 off for remote write"
    );
    assert!(rw.http.follow_redirects);
    let q = QueueConfig {
        capacity: 10_000,
        max_shards: 50,
        min_shards: 1,
        max_samples_per_send: 2000,
        batch_send_deadline: Duration::from_secs(5),
        min_backoff: Duration::from_millis(30),
        max_backoff: Duration::from_secs(5),
        retry_on_http_429: false,
        sample_age_limit: Duration::ZERO,
    };
    assert_eq!(rw.queue_config, q);
    assert_eq!(
        rw.metadata_config,
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    );
    assert_eq!(rw.name.len(), 6);
    assert!(
        rw.name.chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        rw.name
    );
}

#[test]
fn every_field_is_read() {
    let yaml = r#"
global:
  external_labels: {site: edge-1}
remote_write:
  - url: https://central:9090/api/v1/write
    name: central
    remote_timeout: 10s
    headers:
      X-Scope-OrgID: tenant-1
    send_exemplars: true
    protobuf_message: io.prometheus.write.v2.Request
    basic_auth: {username: u, password: p}
    enable_http2: true
    tls_config: {insecure_skip_verify: true}
    write_relabel_configs:
      - source_labels: [__name__]
        regex: ^agent_.*
        action: keep
    queue_config:
      capacity: 500
      max_shards: 4
      min_shards: 2
      max_samples_per_send: 100
      batch_send_deadline: 1s
      min_backoff: 10ms
      max_backoff: 1s
      retry_on_http_429: true
      sample_age_limit: 1h
    metadata_config:
      send: false
      send_interval: 30s
      max_samples_per_send: 50
"#;
    let c = parse(yaml).expect("valid");
    let rw = &c.remote_write[0];
    assert_eq!(rw.name, "central");
    assert_eq!(rw.remote_timeout, Duration::from_secs(10));
    assert_eq!(
        rw.headers.get("X-Scope-OrgID").map(String::as_str),
        Some("tenant-1")
    );
    assert!(rw.send_exemplars);
    assert_eq!(rw.protobuf_message, RemoteWriteMessage::V2);
    let ba = rw.http.basic_auth.as_ref().expect("basic auth");
    assert_eq!(
        (ba.username.as_str(), ba.password.as_deref()),
        ("u", Some("p"))
    );
    assert!(rw.http.enable_http2);
    assert!(rw.http.tls_config.insecure_skip_verify);
    let q = rw.queue_config;
    assert_eq!(
        (
            q.capacity,
            q.max_shards,
            q.min_shards,
            q.max_samples_per_send
        ),
        (500, 4, 2, 100)
    );
    assert_eq!(q.batch_send_deadline, Duration::from_secs(1));
    assert_eq!(q.min_backoff, Duration::from_millis(10));
    assert_eq!(q.max_backoff, Duration::from_secs(1));
    assert!(q.retry_on_http_429);
    assert_eq!(q.sample_age_limit, Duration::from_secs(3600));
    assert_eq!(
        rw.metadata_config,
        MetadataConfig {
            send: false,
            send_interval: Duration::from_secs(30),
            max_samples_per_send: 50,
        }
    );
    // The write relabelling is the ordinary relabel code.
    let keep = &rw.write_relabel_configs;
    let agent = Labels::from_pairs([("__name__", "agent_up")]);
    let other = Labels::from_pairs([("__name__", "up")]);
    assert!(edgeprom_config::relabel::process(&agent, keep).is_some());
    assert!(edgeprom_config::relabel::process(&other, keep).is_none());
}

/// The platform's only remote write (kube-prometheus-stack `remoteWrite` with a keep on
/// `__name__`, see the corpus notes), written as a `prometheus.yml` entry.
#[test]
fn the_platforms_filtered_remote_write_loads() {
    let yaml = r#"
remote_write:
  - url: http://remote-write-host:9091/api/v1/write
    write_relabel_configs:
      - source_labels: [__name__]
        regex: ^agent_.*
        action: keep
"#;
    let c = parse(yaml).expect("valid");
    assert_eq!(c.remote_write[0].write_relabel_configs.len(), 1);
}

#[test]
fn prometheus_bad_cases_give_prometheus_messages() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "remote_write:\n  - url: http://a\n    headers:\n      x-prometheus-remote-write-version: 1\n",
            "remote_write[0].headers",
            "x-prometheus-remote-write-version is a reserved header. It must not be changed",
        ),
        (
            "remote_write:\n  - url: http://a\n    headers:\n      Authorization: x\n",
            "remote_write[0].headers",
            "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
        ),
        (
            "remote_write:\n  - url: http://a\n    protobuf_message: io.prometheus.writet.v2.Request\n",
            "remote_write[0].protobuf_message",
            "invalid protobuf_message value: unknown type for remote write protobuf message io.prometheus.writet.v2.Request, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request",
        ),
        (
            "remote_write:\n  - name: x\n",
            "remote_write[0].url",
            "url for remote_write is empty",
        ),
        (
            "remote_write:\n  - url: http://a\n    name: queue1\n  - url: http://b\n    name: queue1\n",
            "remote_write[1].name",
            "found multiple remote write configs with job name \"queue1\"",
        ),
        (
            "remote_write:\n  - url: http://a\n  - url: http://a\n",
            "remote_write[1]",
            "duplicate remote write configs are not allowed, found duplicate for URL: http://a",
        ),
        (
            "remote_write:\n  - url: http://a\n    queue_config:\n      max_samples_per_send: 0\n",
            "remote_write[0].queue_config",
            "remote write queue max_samples_per_send must be positive",
        ),
        (
            "remote_write:\n  - url: http://a\n    queue_config:\n      max_shards: 0\n",
            "remote_write[0].queue_config",
            "remote write queue max_shards must be positive",
        ),
        (
            "remote_write:\n  - url: http://a\n    queue_config:\n      min_shards: 0\n",
            "remote_write[0].queue_config",
            "remote write queue min_shards must be positive",
        ),
        (
            "remote_write:\n  - url: http://a\n    queue_config:\n      capacity: 0\n",
            "remote_write[0].queue_config",
            "remote write queue capacity must be positive",
        ),
        (
            "remote_write:\n  - url: http://a\n    queue_config:\n      min_shards: 5\n      max_shards: 2\n",
            "remote_write[0].queue_config",
            "remote write queue min_shards must not be greater than max_shards",
        ),
        (
            "remote_write:\n  - url: http://a\n    queue_config:\n      min_backoff: 2s\n      max_backoff: 1s\n",
            "remote_write[0].queue_config",
            "remote write queue max_backoff must not be less than min_backoff",
        ),
        (
            "remote_write:\n  - url: localhost:9090\n",
            "remote_write[0].url",
            "\"localhost:9090\" is not an absolute http or https URL",
        ),
    ];
    for (yaml, field, msg) in cases {
        let e = err(yaml);
        assert_eq!(e.kind, ErrorKind::Invalid, "{yaml}");
        assert_eq!(&e.field, field, "{yaml}");
        assert_eq!(&e.message, msg, "{yaml}");
        assert!(e.line().is_some(), "no position for {yaml}: {e}");
    }
}

#[test]
fn unknown_and_unsupported_fields_are_refused() {
    let e = err("remote_write:\n  - url: http://a\n    queue_config:\n      capacty: 5\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.field, "remote_write[0].queue_config.capacty");
    for (yaml, field) in [
        (
            "remote_write:\n  - url: http://a\n    oauth2: {client_id: x}\n",
            "oauth2",
        ),
        (
            "remote_write:\n  - url: http://a\n    azuread: {cloud: x}\n",
            "azuread",
        ),
        (
            "remote_write:\n  - url: http://a\n    send_native_histograms: true\n",
            "send_native_histograms",
        ),
    ] {
        let e = err(yaml);
        assert_eq!(e.kind, ErrorKind::Unsupported, "{yaml}: {e}");
        assert!(e.field.ends_with(field), "{yaml}: {e}");
    }
    // Explicitly off is what edgeprom does anyway.
    parse("remote_write:\n  - url: http://a\n    send_native_histograms: false\n").expect("valid");
}

#[test]
fn unnamed_queues_get_distinct_stable_names() {
    let yaml = "remote_write:\n  - url: http://a\n  - url: http://b\n";
    let one = parse(yaml).expect("valid");
    let two = parse(yaml).expect("valid");
    assert_ne!(one.remote_write[0].name, one.remote_write[1].name);
    assert_eq!(one.remote_write[0].name, two.remote_write[0].name);
    // Same URL, different settings: allowed, as in Prometheus.
    let c =
        parse("remote_write:\n  - url: http://a\n  - url: http://a\n    send_exemplars: true\n")
            .expect("valid");
    assert_eq!(c.remote_write.len(), 2);
}

#[test]
fn bearer_token_becomes_authorization() {
    let c = parse("remote_write:\n  - url: http://a\n    bearer_token: t0k\n").expect("valid");
    let a = c.remote_write[0].http.authorization.as_ref().expect("auth");
    assert_eq!(
        (a.kind.as_str(), a.credentials.as_deref()),
        ("Bearer", Some("t0k"))
    );
    let e = err(
        "remote_write:\n  - url: http://a\n    bearer_token: t\n    basic_auth: {username: u}\n",
    );
    assert!(e.message.contains("at most one of basic_auth"), "{e}");
}

/// Regression (fuzz target `config`): the scheme check sliced the URL at a byte inside a
/// multi-byte character (`h\u{fffd}&4…`) and panicked; such a URL is now refused like any other
/// that is not http or https.
#[test]
fn url_with_multibyte_character_in_the_scheme_is_refused_not_a_panic() {
    for url in [
        "h\u{fffd}&4ttp://x/api/v1/write",
        "httpé://x",
        "日本語://x/y",
    ] {
        let e = err(&format!("remote_write:\n  - url: \"{url}\"\n"));
        assert!(
            e.to_string().contains("not an absolute http or https URL"),
            "{e}"
        );
    }
}
