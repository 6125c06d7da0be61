//! The Dynamo observability configs (testdata copies, byte-for-byte) load with Prometheus's
//! defaults.

use std::path::{Path, PathBuf};

use edgeprom_config::{
    Config, Duration, ErrorKind, ScrapeProtocol, check_config, check_failure_text, relabel,
};
use edgeprom_model::Labels;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn testdata_copies_are_byte_identical_to_the_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/dynamo-corpus");
    for name in [
        "prometheus.yml",
        "prometheus-xpu.yml",
        "xpu-alert-rules.yml",
    ] {
        let Ok(upstream) = std::fs::read(corpus.join(name)) else {
            // shared/ is beside the repo on developer machines and CI; skip quietly elsewhere.
            continue;
        };
        let ours = std::fs::read(testdata(name)).expect("testdata copy exists");
        assert_eq!(ours, upstream, "{name} drifted from the corpus");
    }
}

#[test]
fn dynamo_prometheus_yml() {
    let path = testdata("prometheus.yml");
    let cfg = Config::load(&path).expect("loads");
    assert_eq!(cfg.global.scrape_interval, secs(10));
    assert_eq!(cfg.global.evaluation_interval, secs(10));
    assert_eq!(cfg.global.scrape_timeout, secs(10));
    assert!(cfg.rule_files.is_empty());
    assert_eq!(cfg.source, path);
    assert_eq!(cfg.text, std::fs::read_to_string(&path).expect("readable"));

    let jobs: Vec<(&str, Duration, Duration, &str)> = cfg
        .scrape_configs
        .iter()
        .map(|s| {
            (
                s.job_name.as_str(),
                s.scrape_interval,
                s.scrape_timeout,
                s.static_configs[0].targets[0].as_str(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        vec![
            (
                "nats-prometheus-exporter",
                secs(2),
                secs(2),
                "nats-prometheus-exporter:7777"
            ),
            ("etcd-server", secs(2), secs(2), "etcd-server:2379"),
            ("dcgm-exporter", secs(5), secs(5), "dcgm-exporter:9401"),
            (
                "dynamo-frontend",
                secs(10),
                secs(10),
                "host.docker.internal:8000"
            ),
            (
                "dynamo-backend",
                secs(6),
                secs(6),
                "host.docker.internal:8081"
            ),
            // The 1s job gets a 1s timeout: min(global 10s, interval).
            (
                "dynamo-nixl",
                secs(1),
                secs(1),
                "host.docker.internal:19090"
            ),
            (
                "kvbm-metrics",
                secs(2),
                secs(2),
                "host.docker.internal:6880"
            ),
        ]
    );
    for s in &cfg.scrape_configs {
        assert_eq!(s.metrics_path, "/metrics");
        assert_eq!(s.scheme, "http");
        assert!(s.honor_timestamps);
        assert!(!s.honor_labels);
        assert!(s.enable_compression);
        assert!(s.http.follow_redirects);
        assert!(s.http.enable_http2);
        assert_eq!(s.scrape_protocols, ScrapeProtocol::DEFAULT.to_vec());
        assert_eq!(s.static_configs.len(), 1);
        assert_eq!(s.static_configs[0].source, "0");
        assert!(s.relabel_configs.is_empty());
    }
}

#[test]
fn dynamo_prometheus_xpu_yml_with_local_rule_file() {
    let path = testdata("prometheus-xpu-local.yml");
    let cfg = Config::load(&path).expect("loads");
    assert_eq!(cfg.rule_files, vec![testdata("xpu-alert-rules.yml")]);
    let names: Vec<&str> = cfg
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "nats-prometheus-exporter",
            "etcd-server",
            "dynamo-frontend",
            "dynamo-backend",
            "kvbm-metrics",
            "xpu-smi-exporter"
        ]
    );
    let xpu = cfg.scrape_config("xpu-smi-exporter").expect("xpu job");
    // Timeout equal to the interval is accepted.
    assert_eq!(
        (xpu.scrape_interval, xpu.scrape_timeout),
        (secs(5), secs(5))
    );
    assert_eq!(xpu.relabel_configs.len(), 1);
    let r = &xpu.relabel_configs[0];
    assert_eq!(r.action, relabel::Action::Replace);
    assert_eq!(r.regex.as_str(), "(.*)");
    assert_eq!(r.separator, ";");
    assert_eq!(r.source_labels, ["__address__"]);
    assert_eq!(r.target_label, "instance");
    assert_eq!(r.replacement, "xpu-host");
    let target = Labels::from_pairs([
        ("__address__", "host.docker.internal:9966"),
        ("instance", "host.docker.internal:9966"),
        ("job", "xpu-smi-exporter"),
    ]);
    let out = relabel::process(&target, &xpu.relabel_configs).expect("kept");
    assert_eq!(out.get("instance"), Some("xpu-host"));

    let report = check_config(&path).expect("check passes");
    let text = report.to_string();
    assert_eq!(
        text,
        format!(
            "Checking {p}\n  SUCCESS: 1 rule files found\n SUCCESS: {p} is valid prometheus config file syntax\n",
            p = path.display()
        )
    );
}

#[test]
fn unchanged_xpu_config_reports_the_missing_container_rule_file() {
    let path = testdata("prometheus-xpu.yml");
    if Path::new("/etc/prometheus/xpu-alert-rules.yml").exists() {
        return; // Running inside the compose container: the file is really there.
    }
    let err = Config::load(&path).expect_err("rule file is missing here");
    assert_eq!(err.kind, ErrorKind::MissingRuleFile);
    assert_eq!(err.line(), Some(26));
    assert_eq!(err.column(), Some(5));
    assert_eq!(
        err.to_string(),
        format!(
            "{}:26:5: rule_files[0]: \"/etc/prometheus/xpu-alert-rules.yml\" does not point to an existing file",
            path.display()
        )
    );
    let failure = check_failure_text(&path, &check_config(&path).expect_err("fails"));
    assert!(failure.starts_with(&format!("Checking {}\n  FAILED: ", path.display())));
}

#[test]
fn check_report_without_rules_prints_only_syntax_line() {
    let path = testdata("prometheus.yml");
    let report = check_config(&path).expect("passes");
    assert_eq!(
        report.to_string(),
        format!(
            "Checking {p}\n SUCCESS: {p} is valid prometheus config file syntax\n",
            p = path.display()
        )
    );
}
