//! `edgeprom check config` on the platform's own configuration files, unchanged, and on broken
//! copies: it must accept the first and point at the broken line and column of the others.

use std::path::PathBuf;
use std::process::Command;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/testdata")
        .join(name)
}

fn check(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .arg("check")
        .arg("config")
        .args(files)
        .output()
        .expect("run edgeprom check config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn platform_configs_pass_unchanged() {
    let (ok, out) = check(&[testdata("prometheus.yml")]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    // prometheus-xpu.yml with its rule file reachable (the only change: the rule path).
    let (ok, out) = check(&[testdata("prometheus-xpu-local.yml")]);
    assert!(ok, "{out}");
    assert!(out.contains("1 rule files found"), "{out}");
    // As promtool does, the rule file it names is checked too.
    assert!(
        out.contains("xpu-alert-rules.yml\n  SUCCESS: 8 rules found"),
        "{out}"
    );
}

fn check_rules(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .args(["check", "rules"])
        .args(files)
        .output()
        .expect("run edgeprom check rules");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn platform_rule_file_passes_check_rules_unchanged() {
    let (ok, out) = check_rules(&[testdata("xpu-alert-rules.yml")]);
    assert!(ok, "{out}");
    assert!(out.contains("  SUCCESS: 8 rules found"), "{out}");
}

#[test]
fn broken_rule_file_fails_with_file_line_col() {
    let dir = std::env::temp_dir().join(format!("edgeprom-check-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.yml");
    let text = std::fs::read_to_string(testdata("xpu-alert-rules.yml"))
        .expect("read rules")
        .replace("{{ $labels.instance }}", "{{ $labels.instance ");
    std::fs::write(&bad, text).expect("write");
    let (ok, out) = check_rules(&[bad.clone(), testdata("xpu-alert-rules.yml")]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("bad.yml:72:24: groups[0].rules[5].annotations.description"),
        "{out}"
    );
    assert!(out.contains("XPUExporterDown"), "{out}");
    assert!(out.contains("unclosed action"), "{out}");
    assert!(
        out.contains("SUCCESS: 8 rules found"),
        "every file is checked: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unchanged_xpu_config_names_the_missing_rule_file() {
    let (ok, out) = check(&[testdata("prometheus-xpu.yml")]);
    assert!(!ok, "{out}");
    assert!(out.contains("/etc/prometheus/xpu-alert-rules.yml"), "{out}");
}

#[test]
fn broken_copies_fail_with_file_line_col() {
    let (ok, out) = check(&[testdata("broken-unknown-field.yml")]);
    assert!(!ok, "{out}");
    assert!(out.contains("broken-unknown-field.yml:55:5"), "{out}");
    assert!(out.contains("scrape_intervall"), "{out}");

    let (ok, out) = check(&[testdata("broken-duration.yml")]);
    assert!(!ok, "{out}");
    assert!(out.contains("broken-duration.yml:47:"), "{out}");
    assert!(out.contains("1.5h"), "{out}");
}

#[test]
fn one_bad_file_fails_the_run_but_every_file_is_checked() {
    let (ok, out) = check(&[testdata("broken-duration.yml"), testdata("prometheus.yml")]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn remote_write_is_checked() {
    let dir = std::env::temp_dir().join(format!("edgeprom-check-rw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = dir.join("good.yml");
    std::fs::write(
        &good,
        "remote_write:\n  - url: http://central:9090/api/v1/write\n    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: ^agent_.*\n        action: keep\n",
    )
    .expect("write");
    let (ok, out) = check(std::slice::from_ref(&good));
    assert!(ok, "{out}");
    let bad = dir.join("bad.yml");
    std::fs::write(
        &bad,
        "remote_write:\n  - url: http://central:9090/api/v1/write\n    headers:\n      Content-Type: text/plain\n",
    )
    .expect("write");
    let (ok, out) = check(std::slice::from_ref(&bad));
    assert!(!ok, "{out}");
    assert!(
        out.contains("bad.yml:4:7: remote_write[0].headers: Content-Type is a reserved header"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
