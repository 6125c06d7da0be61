//! Defaults, validation and error positions.

use std::path::{Path, PathBuf};

use edgeprom_config::{Config, ConfigError, Duration, ErrorKind, ScrapeProtocol, file_sd};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

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
fn broken_corpus_copy_unknown_field_has_exact_position() {
    let path = testdata("broken-unknown-field.yml");
    let e = Config::load(&path).expect_err("unknown field");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.line(), e.column()), (Some(55), Some(5)));
    assert_eq!(e.field, "scrape_configs[5].scrape_intervall");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:55:5: scrape_configs[5].scrape_intervall: unknown field `scrape_intervall`",
            path.display()
        )),
        "{shown}"
    );
}

#[test]
fn broken_corpus_copy_bad_duration_has_exact_position() {
    let path = testdata("broken-duration.yml");
    let e = Config::load(&path).expect_err("bad duration");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:47:22: scrape_configs[4].scrape_interval: unknown unit \".\" in duration \"1.5h\"",
            path.display()
        )
    );
}

#[test]
fn empty_and_comment_only_files_are_defaults() {
    for text in ["", "\n", "# nothing here\n", "global:\n"] {
        let c = parse(text).expect("valid");
        assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
        assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
        assert_eq!(c.global.scrape_protocols, ScrapeProtocol::DEFAULT.to_vec());
        assert!(c.scrape_configs.is_empty());
    }
}

#[test]
fn timeout_defaults_and_inheritance() {
    let c = parse(
        "global:\n  scrape_interval: 5s\n  sample_limit: 100\n  body_size_limit: 10MB\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 30s\n    sample_limit: 7\n  - job_name: c\n    scrape_interval: 30s\n    scrape_timeout: 20s\n",
    )
    .expect("valid");
    // Global timeout is clamped to a short global interval.
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    let a = &c.scrape_configs[0];
    assert_eq!(
        (a.scrape_interval, a.scrape_timeout),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
    assert_eq!(a.sample_limit, 100);
    assert_eq!(a.body_size_limit, 10 << 20);
    let b = &c.scrape_configs[1];
    // The job's timeout is min(global timeout 5s, interval 30s).
    assert_eq!(
        (b.scrape_interval, b.scrape_timeout),
        (Duration::from_secs(30), Duration::from_secs(5))
    );
    assert_eq!(b.sample_limit, 7);
    let cc = &c.scrape_configs[2];
    assert_eq!(cc.scrape_timeout, Duration::from_secs(20));
}

#[test]
fn timeout_greater_than_interval() {
    let e =
        err("scrape_configs:\n  - job_name: x\n    scrape_interval: 5s\n    scrape_timeout: 6s\n");
    assert_eq!(
        e.to_string(),
        "/cfg/prometheus.yml:4:21: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"x\""
    );
    let e = err("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n");
    assert_eq!(
        e.to_string(),
        "/cfg/prometheus.yml:3:19: global.scrape_timeout: global scrape timeout greater than scrape interval"
    );
}

#[test]
fn duplicate_job_and_empty_job() {
    let e = err("scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n");
    assert_eq!(
        e.to_string(),
        "/cfg/prometheus.yml:4:15: scrape_configs[2].job_name: found multiple scrape configs with job name \"a\""
    );
    let e = err("scrape_configs:\n  - scrape_interval: 5s\n");
    assert_eq!(e.message, "job_name is empty");
    assert_eq!(e.line(), Some(2));
}

#[test]
fn bad_values_are_located() {
    let cases: &[(&str, &str, (u64, u64))] = &[
        (
            "scrape_configs:\n  - job_name: x\n    scrape_interval: 30m1h\n",
            "scrape_configs[0].scrape_interval: not a valid duration string: \"30m1h\"",
            (3, 22),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    scheme: ftp\n",
            "scrape_configs[0].scheme: invalid scheme: \"ftp\"",
            (3, 13),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - regex: '(unclosed'\n        target_label: y\n",
            "scrape_configs[0].relabel_configs[0].regex: error parsing regexp:",
            (4, 16),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - regex: '(a|b){10000}'\n        target_label: y\n",
            "scrape_configs[0].relabel_configs[0].regex: error parsing regexp: invalid repeat count: `{10000}`",
            (4, 16),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - regex: '(a{10}){101}'\n        target_label: y\n",
            "scrape_configs[0].relabel_configs[0].regex: error parsing regexp: invalid repeat count: `{101}`",
            (4, 16),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - action: explode\n",
            "scrape_configs[0].relabel_configs[0].action: unknown relabel action \"explode\"",
            (4, 17),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - action: hashmod\n        target_label: y\n",
            "scrape_configs[0].relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus",
            (4, 9),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - source_labels: [a]\n",
            "scrape_configs[0].relabel_configs[0]: relabel configuration for replace action requires 'target_label' value",
            (4, 9),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    static_configs:\n      - targets: ['http://a:1/metrics']\n",
            "scrape_configs[0].static_configs[0].targets[0]: \"http://a:1/metrics\" is not a valid hostname",
            (4, 19),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    scrape_protocols: [PrometheusText0.0.4, Bogus]\n",
            "scrape_configs[0].scrape_protocols: scrape_protocols: unknown scrape protocol Bogus, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0] for scrape config with job name \"x\"",
            (3, 23),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    file_sd_configs:\n      - files: ['targets.txt']\n",
            "scrape_configs[0].file_sd_configs[0].files[0]: path name \"targets.txt\" is not valid for file discovery",
            (4, 17),
        ),
        (
            "rule_files: ['rules/*/x.yml']\n",
            "rule_files[0]: invalid rule file path \"rules/*/x.yml\"",
            (1, 14),
        ),
        (
            "scrape_configs:\n  - job_name: x\n    honor_labels: maybe\n",
            "scrape_configs[0].honor_labels: invalid boolean",
            (3, 19),
        ),
    ];
    for (yaml, want, (line, col)) in cases {
        let e = err(yaml);
        let shown = e.to_string();
        let expect = format!("/cfg/prometheus.yml:{line}:{col}: {want}");
        assert!(
            shown.starts_with(&expect),
            "\n got: {shown}\nwant: {expect}"
        );
    }
}

#[test]
fn unsupported_sections_are_rejected_where_they_are() {
    let cases: &[(&str, &str, (u64, u64))] = &[
        (
            "global:\n  scrape_interval: 5s\nalerting:\n  alert_relabel_configs: []\n",
            "alert_relabel_configs",
            (4, 3),
        ),
        (
            "remote_write:\n  - url: http://x/api/v1/write\n    sigv4:\n      region: x\n",
            "sigv4",
            (3, 5),
        ),
        ("remote_read:\n  - url: http://x\n", "remote_read", (1, 1)),
        ("storage:\n  tsdb: {}\n", "tsdb", (2, 3)),
        ("tracing:\n  endpoint: x:4317\n", "tracing", (1, 1)),
        ("otlp: {}\n", "otlp", (1, 1)),
        ("runtime:\n  gogc: 50\n", "runtime", (1, 1)),
        (
            "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: pod\n",
            "kubernetes_sd_configs",
            (3, 5),
        ),
        (
            "scrape_configs:\n  - job_name: k\n    oauth2:\n      client_id: a\n",
            "oauth2",
            (3, 5),
        ),
        (
            "scrape_configs:\n  - job_name: k\n    dns_sd_configs: []\n",
            "dns_sd_configs",
            (3, 5),
        ),
    ];
    for (yaml, field, (line, col)) in cases {
        let e = err(yaml);
        assert_eq!(e.kind, ErrorKind::Unsupported, "{yaml}");
        assert_eq!((e.line(), e.column()), (Some(*line), Some(*col)), "{yaml}");
        assert!(
            e.to_string()
                .contains(&format!("`{field}` is not supported yet by edgeprom")),
            "{e}"
        );
    }
    // A truly unknown field stays an unknown-field error.
    let e = err("alertin: {}\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    // An unsupported setting used with a non-default value.
    let e = err("global:\n  metric_name_validation_scheme: legacy\n");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.line(), Some(2));
}

#[test]
fn alerting_section_parses_with_prometheus_defaults() {
    let c = parse(
        "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['am:9093', 'am2:9093']\n    - scheme: https\n      path_prefix: /am/\n      timeout: 3s\n      api_version: v2\n      static_configs:\n        - targets: ['x:1']\n",
    )
    .expect("valid");
    let ams = &c.alerting.alertmanagers;
    assert_eq!(ams.len(), 2);
    assert_eq!(ams[0].targets, ["am:9093", "am2:9093"]);
    assert_eq!(ams[0].timeout, Duration::from_secs(10));
    assert_eq!(ams[0].alerts_url("am:9093"), "http://am:9093/api/v2/alerts");
    assert_eq!(ams[1].alerts_url("x:1"), "https://x:1/am/api/v2/alerts");
    assert_eq!(ams[1].timeout, Duration::from_secs(3));
    let e = err("alerting:\n  alertmanagers:\n    - api_version: v1\n");
    assert_eq!((e.line(), e.column()), (Some(3), Some(20)), "{e}");
    assert!(
        e.to_string()
            .contains("alerting.alertmanagers[0].api_version"),
        "{e}"
    );
    let e = err("alerting:\n  alertmanagers:\n    - basic_auth: {username: a}\n");
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
}

#[test]
fn merge_keys_and_anchors() {
    let c = parse(
        "scrape_configs:\n  - &base\n    job_name: one\n    scrape_interval: 3s\n    metrics_path: /m\n  - <<: *base\n    job_name: two\n",
    )
    .expect("valid");
    let two = c.scrape_config("two").expect("job two");
    assert_eq!(two.scrape_interval, Duration::from_secs(3));
    assert_eq!(two.metrics_path, "/m");
}

#[test]
fn scrape_settings_parse() {
    let dir = tempdir("settings");
    std::fs::write(dir.join("pw"), "s3cret\n").expect("write");
    let text = "global:\n  external_labels:\n    region: eu\n    cost: '$$5'\nscrape_configs:\n  - job_name: x\n    scheme: https\n    metrics_path: /probe\n    params:\n      module: [http_2xx]\n    honor_labels: true\n    honor_timestamps: false\n    enable_compression: false\n    body_size_limit: 1GiB\n    scrape_protocols: [PrometheusText0.0.4]\n    fallback_scrape_protocol: PrometheusText0.0.4\n    basic_auth:\n      username: u\n      password_file: pw\n    tls_config:\n      insecure_skip_verify: true\n      min_version: TLS12\n      ca_file: ca.pem\n    follow_redirects: false\n    static_configs:\n      - targets: [a:1, b:2]\n        labels: {env: prod}\n      - targets: [c:3]\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: go_.*\n        action: drop\n";
    let c = Config::parse(text, &dir.join("prometheus.yml")).expect("valid");
    assert_eq!(c.global.external_labels.get("region"), Some("eu"));
    assert_eq!(c.global.external_labels.get("cost"), Some("$5"));
    let x = &c.scrape_configs[0];
    assert_eq!(x.scheme, "https");
    assert_eq!(x.metrics_path, "/probe");
    assert_eq!(x.params["module"], ["http_2xx"]);
    assert!(x.honor_labels && !x.honor_timestamps && !x.enable_compression);
    assert_eq!(x.body_size_limit, 1 << 30);
    assert_eq!(x.scrape_protocols, [ScrapeProtocol::PrometheusText0_0_4]);
    assert_eq!(
        x.fallback_scrape_protocol,
        Some(ScrapeProtocol::PrometheusText0_0_4)
    );
    let ba = x.http.basic_auth.as_ref().expect("basic auth");
    assert_eq!(
        (ba.username.as_str(), ba.password.as_deref()),
        ("u", Some("s3cret"))
    );
    assert_eq!(ba.password_file.as_deref(), Some(dir.join("pw").as_path()));
    assert!(x.http.tls_config.insecure_skip_verify);
    assert_eq!(
        x.http.tls_config.ca_file.as_deref(),
        Some(dir.join("ca.pem").as_path())
    );
    assert!(!x.http.follow_redirects);
    assert_eq!(x.static_configs.len(), 2);
    assert_eq!(x.static_configs[1].source, "1");
    assert_eq!(x.static_configs[0].labels["env"], "prod");
    assert_eq!(
        x.metric_relabel_configs[0].action,
        edgeprom_config::relabel::Action::Drop
    );
    assert_eq!(
        ScrapeProtocol::OpenMetricsText1_0_0.as_str(),
        "OpenMetricsText1.0.0"
    );
}

#[test]
fn bearer_token_becomes_authorization() {
    let c = parse("scrape_configs:\n  - job_name: x\n    bearer_token: abc\n").expect("valid");
    let a = c.scrape_configs[0]
        .http
        .authorization
        .as_ref()
        .expect("auth");
    assert_eq!(
        (a.kind.as_str(), a.credentials.as_deref()),
        ("Bearer", Some("abc"))
    );
    let e = err(
        "scrape_configs:\n  - job_name: x\n    authorization:\n      type: Basic\n      credentials: x\n",
    );
    assert!(e.message.contains("use \"basic_auth\" instead"), "{e}");
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeprom-config-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn rule_file_globs_and_relative_paths() {
    let dir = tempdir("rules");
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    std::fs::write(dir.join("rules/b.yml"), "groups: []\n").expect("write");
    std::fs::write(dir.join("rules/a.yml"), "groups: []\n").expect("write");
    let cfg_path = dir.join("prometheus.yml");
    let c = Config::parse("rule_files: ['rules/*.yml', 'none/*.yml']\n", &cfg_path).expect("valid");
    assert_eq!(
        c.rule_files,
        [dir.join("rules/a.yml"), dir.join("rules/b.yml")]
    );
    let e = Config::parse("rule_files: ['rules/c.yml']\n", &cfg_path).expect_err("missing");
    assert_eq!(e.kind, ErrorKind::MissingRuleFile);
    assert!(
        e.message
            .contains(&format!("{:?}", dir.join("rules/c.yml").to_string_lossy())),
        "{e}"
    );
}

#[test]
fn scrape_config_files_are_merged() {
    let dir = tempdir("scfiles");
    std::fs::create_dir_all(dir.join("jobs")).expect("mkdir");
    std::fs::write(
        dir.join("jobs/extra.yml"),
        "scrape_configs:\n  - job_name: extra\n    scrape_interval: 15s\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("jobs/dup.yml"),
        "scrape_configs:\n  - job_name: main\n",
    )
    .expect("write");
    let cfg_path = dir.join("prometheus.yml");
    let c = Config::parse(
        "global:\n  scrape_interval: 20s\nscrape_config_files: ['jobs/extra.yml']\nscrape_configs:\n  - job_name: main\n",
        &cfg_path,
    )
    .expect("valid");
    let names: Vec<&str> = c
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    assert_eq!(names, ["main", "extra"]);
    assert_eq!(c.scrape_configs[1].scrape_timeout, Duration::from_secs(10));
    let e = Config::parse(
        "scrape_config_files: ['jobs/*.yml']\nscrape_configs:\n  - job_name: main\n",
        &cfg_path,
    )
    .expect_err("duplicate");
    assert_eq!(e.file, dir.join("jobs/dup.yml"));
    assert!(
        e.message.ends_with("first found in main config file"),
        "{e}"
    );
}

#[test]
fn file_sd_reads_json_and_yaml() {
    let dir = tempdir("filesd");
    let json = dir.join("t.json");
    std::fs::write(
        &json,
        r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#,
    )
    .expect("write");
    let yaml = dir.join("t.yml");
    std::fs::write(&yaml, "- targets: ['d:4']\n  labels:\n    zone: z1\n").expect("write");
    let groups = file_sd::read_target_file(&json).expect("json");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].targets, ["a:1", "b:2"]);
    assert_eq!(groups[0].labels["env"], "prod");
    assert_eq!(
        groups[0].labels[file_sd::FILEPATH_LABEL],
        json.to_string_lossy()
    );
    assert_eq!(groups[1].source, format!("{}:1", json.display()));
    let groups = file_sd::read_target_file(&yaml).expect("yaml");
    assert_eq!(groups[0].targets, ["d:4"]);
    assert_eq!(groups[0].labels["zone"], "z1");
    assert_eq!(groups[0].source, format!("{}:0", yaml.display()));

    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "- targets: ['d:4']\n  lables: {}\n").expect("write");
    let e = file_sd::read_target_file(&bad).expect_err("unknown field");
    assert_eq!((e.line(), e.column()), (Some(2), Some(3)));

    let cfg = Config::parse(
        "scrape_configs:\n  - job_name: f\n    file_sd_configs:\n      - files: ['*.json', 't.yml']\n",
        &dir.join("prometheus.yml"),
    )
    .expect("valid");
    let fsd = &cfg.scrape_configs[0].file_sd_configs[0];
    assert_eq!(fsd.refresh_interval, Duration::from_secs(300));
    assert_eq!(file_sd::expand(fsd), [json.clone(), yaml.clone()]);
}

#[test]
fn storage_exemplars_section() {
    let c = Config::parse("scrape_configs: []\n", Path::new("t.yml")).expect("valid");
    assert_eq!(c.storage.exemplars, None);
    assert_eq!(c.storage.max_exemplars(), 100_000);
    let c = Config::parse(
        "storage:\n  exemplars:\n    max_exemplars: 42\n",
        Path::new("t.yml"),
    )
    .expect("valid");
    assert_eq!(c.storage.max_exemplars(), 42);
    let c = Config::parse("storage:\n  exemplars: {}\n", Path::new("t.yml")).expect("valid");
    assert_eq!(c.storage.max_exemplars(), 100_000);
    let e = err("storage:\n  exemplars:\n    max_exemplar: 1\n");
    assert!(e.to_string().contains("max_exemplar"), "{e}");
}
