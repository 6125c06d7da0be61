//! Alerting end to end with a real Alertmanager: a loopback target drives
//! `XPUCriticalTemperature` from the platform's `xpu-alert-rules.yml` (copied with `for: 3s` and
//! 1 s group intervals) through pending, firing and resolved. Every state is checked in
//! `/api/v1/rules` and `/api/v1/alerts`, firing in Alertmanager's `/api/v2/alerts` (external
//! labels added, annotations expanded) and gone from there once resolved. A reload in the middle
//! keeps the alert's state, and a second Alertmanager that is down only counts send errors.
//!
//! Needs Debian's `prometheus-alertmanager` (binary `prometheus-alertmanager` or `alertmanager`);
//! without it the test prints SKIPPED and passes, unless `EDGEPROM_REQUIRE_ALERTMANAGER=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{free_port, metric, self_metrics, start, temp_dir};
use serde_json::Value;

const ALERT: &str = "XPUCriticalTemperature";

struct Alertmanager {
    child: Child,
    base: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["prometheus-alertmanager", "alertmanager"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

async fn start_alertmanager(bin: &Path, dir: &Path) -> Alertmanager {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
    )
    .expect("write alertmanager config");
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No gossip: an empty cluster address turns clustering off.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("alertmanager.log")).expect("log"),
        ))
        .spawn()
        .expect("start alertmanager");
    let mut am = Alertmanager {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = am.child.try_wait() {
            let log = std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default();
            panic!("alertmanager exited with {status}: {log}");
        }
        let ready = reqwest::get(format!("{}/-/ready", am.base)).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return am;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alertmanager did not become ready");
}

/// A target exposing a GPU temperature the test sets.
async fn xpu_target(temp: Arc<AtomicU64>) -> String {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let t = f64::from_bits(temp.load(Ordering::SeqCst));
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    format!(
                        "xpu_temperature_celsius{{device_id=\"0\",location=\"gpu\"}} {t}\nxpu_temperature_celsius{{device_id=\"0\",location=\"memory\"}} 40\n"
                    ),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.expect("GET");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let body = r.text().await.expect("body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"))
}

/// Polls `probe` every 200 ms until it returns `Some`, at most `limit`.
async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rule's entry in `/api/v1/rules?type=alert&rule_name[]=…`.
async fn rule(base: &str) -> Value {
    let v = get_json(&format!(
        "{base}/api/v1/rules?type=alert&rule_name[]={ALERT}&rule_group[]=xpu_health"
    ))
    .await;
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    assert_eq!(groups.len(), 1, "filters leave one group: {v}");
    let rules = groups[0]["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 1, "filters leave one rule: {v}");
    rules[0].clone()
}

/// Our alert in `/api/v1/alerts`, if listed.
async fn api_alert(base: &str) -> Option<Value> {
    let v = get_json(&format!("{base}/api/v1/alerts")).await;
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == ALERT)
        .cloned()
}

/// Our alert in Alertmanager's `/api/v2/alerts`, if listed.
async fn am_alert(am: &str) -> Option<Value> {
    let v = get_json(&format!("{am}/api/v2/alerts")).await;
    v.as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == ALERT)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_pending_firing_resolved_reaches_alertmanager() {
    let Some(bin) = alertmanager_binary() else {
        if std::env::var("EDGEPROM_REQUIRE_ALERTMANAGER").as_deref() == Ok("1") {
            panic!("EDGEPROM_REQUIRE_ALERTMANAGER=1 but no alertmanager binary on PATH");
        }
        println!(
            "SKIPPED rules_e2e: no `prometheus-alertmanager`/`alertmanager` on PATH (Debian: apt-get install prometheus-alertmanager)"
        );
        return;
    };
    let started = Instant::now();
    let dir = temp_dir("rules");
    let am = start_alertmanager(&bin, &dir).await;
    let down_am = format!("127.0.0.1:{}", free_port());
    let temp = Arc::new(AtomicU64::new(50f64.to_bits()));
    let target = xpu_target(temp.clone()).await;

    // The platform's rules, with a short `for` and 1 s evaluations so the test is quick.
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/testdata/xpu-alert-rules.yml"),
    )
    .expect("read xpu rules")
    .replace("for: 30s", "for: 3s")
    .replace("interval: 15s", "interval: 1s")
    .replace("interval: 30s", "interval: 1s");
    std::fs::write(dir.join("rules.yml"), rules).expect("write rules");
    std::fs::write(
        dir.join("recording.yml"),
        "groups:\n  - name: recorded\n    interval: 1s\n    rules:\n      - record: job:xpu_temperature_celsius:max\n        expr: max by (job) (xpu_temperature_celsius)\n",
    )
    .expect("write recording rules");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: e2e\nrule_files:\n  - rules.yml\n  - recording.yml\nalerting:\n  alertmanagers:\n    - timeout: 2s\n      static_configs:\n        - targets: ['{}', '{down_am}']\nscrape_configs:\n  - job_name: xpu\n    static_configs:\n      - targets: ['{target}']\n",
            am.base.trim_start_matches("http://")
        ),
    )
    .expect("write config");
    let ep = start(&dir, &config, &["--web.enable-lifecycle"]).await;
    let base = ep.base.clone();

    // The recorded series equals its expression queried directly, at an evaluation's timestamp.
    let query = async |q: &str, t: &str| {
        let v = get_json(&format!(
            "{base}/api/v1/query?query={}&time={t}",
            form_urlencoded_byte(q)
        ))
        .await;
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    let eval_time = wait_for("a recorded sample", Duration::from_secs(6), async || {
        let now = format!(
            "{:.3}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs_f64()
        );
        let r = query("timestamp(job:xpu_temperature_celsius:max)", &now).await;
        r.first()?["value"][1].as_str().map(String::from)
    })
    .await;
    let recorded = query("job:xpu_temperature_celsius:max", &eval_time).await;
    let direct = query("max by (job) (xpu_temperature_celsius)", &eval_time).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["value"], direct[0]["value"]);
    assert_eq!(recorded[0]["metric"]["job"], direct[0]["metric"]["job"]);
    assert_eq!(recorded[0]["value"][1], "50");

    // Inactive: evaluated, healthy, no alert.
    let r = wait_for(
        "a healthy first evaluation",
        Duration::from_secs(6),
        async || {
            let r = rule(&base).await;
            (r["health"] == "ok").then_some(r)
        },
    )
    .await;
    assert_eq!(r["state"], "inactive", "{r}");
    assert_eq!(r["duration"], 3.0);
    assert_eq!(r["query"], "xpu_temperature_celsius{location=\"gpu\"} > 95");
    assert!(api_alert(&base).await.is_none());

    // Pending.
    temp.store(99.0f64.to_bits(), Ordering::SeqCst);
    let pending = wait_for("pending", Duration::from_secs(6), async || {
        api_alert(&base).await.filter(|a| a["state"] == "pending")
    })
    .await;
    assert_eq!(rule(&base).await["state"], "pending");
    assert_eq!(pending["labels"]["severity"], "critical");
    assert_eq!(pending["value"], "9.9e+01");

    // Firing, with the same activeAt, and in Alertmanager.
    let firing = wait_for("firing", Duration::from_secs(8), async || {
        api_alert(&base).await.filter(|a| a["state"] == "firing")
    })
    .await;
    assert_eq!(firing["activeAt"], pending["activeAt"]);
    let r = rule(&base).await;
    assert_eq!(r["state"], "firing");
    assert_eq!(r["alerts"][0]["state"], "firing");
    assert_eq!(
        firing["annotations"]["description"],
        "XPU device 0 GPU temperature is 99.0°C — immediate action required"
    );
    let sent = wait_for(
        "the alert in Alertmanager",
        Duration::from_secs(8),
        async || am_alert(&am.base).await,
    )
    .await;
    assert_eq!(
        sent["labels"]["cluster"], "e2e",
        "external labels added: {sent}"
    );
    assert_eq!(sent["labels"]["severity"], "critical");
    assert_eq!(sent["labels"]["device_id"], "0");
    assert_eq!(
        sent["annotations"]["summary"],
        "Intel XPU temperature critical"
    );
    assert_eq!(sent["status"]["state"], "active");
    assert!(
        sent["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=")),
        "{sent}"
    );
    let alerts_series = get_json(&format!(
        "{base}/api/v1/query?query=ALERTS%7Balertname%3D%22{ALERT}%22%7D"
    ))
    .await;
    assert_eq!(
        alerts_series["data"]["result"][0]["metric"]["alertstate"], "firing",
        "{alerts_series}"
    );

    // A reload keeps the firing alert and its activeAt.
    let reload = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(reload.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = api_alert(&base)
        .await
        .expect("alert still there after reload");
    assert_eq!(after["state"], "firing");
    assert_eq!(after["activeAt"], pending["activeAt"]);

    // A broken rule file fails the reload with its position; the alert goes on firing.
    let good_rules = std::fs::read_to_string(dir.join("rules.yml")).expect("read rules");
    std::fs::write(
        dir.join("rules.yml"),
        good_rules.replace("expr: xpu_power_watts > 400", "expr: xpu_power_watts >"),
    )
    .expect("break rules");
    let reload = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(reload.status(), 500);
    let text = reload.text().await.unwrap_or_default();
    assert!(text.contains("rules.yml:57:15"), "{text}");
    std::fs::write(dir.join("rules.yml"), good_rules).expect("restore rules");
    let after = api_alert(&base)
        .await
        .expect("alert still there after a failed reload");
    assert_eq!(after["state"], "firing");

    // Resolved: gone from our API and from Alertmanager's active alerts.
    temp.store(50.0f64.to_bits(), Ordering::SeqCst);
    wait_for("resolved", Duration::from_secs(6), async || {
        api_alert(&base).await.is_none().then_some(())
    })
    .await;
    assert_eq!(rule(&base).await["state"], "inactive");
    wait_for(
        "resolved in Alertmanager",
        Duration::from_secs(8),
        async || am_alert(&am.base).await.is_none().then_some(()),
    )
    .await;

    let m = self_metrics(&ep).await;
    let am_url = format!("{}/api/v2/alerts", am.base);
    let sent_ok = metric(&m, &["prometheus_notifications_sent_total", &am_url]).unwrap_or(0.0);
    let errors_ok = metric(&m, &["prometheus_notifications_errors_total", &am_url]).unwrap_or(0.0);
    let errors_down =
        metric(&m, &["prometheus_notifications_errors_total", &down_am]).unwrap_or(0.0);
    assert!(sent_ok >= 2.0, "firing and resolved sent: {sent_ok}");
    assert_eq!(errors_ok, 0.0);
    assert!(
        errors_down >= 2.0,
        "the down Alertmanager counts errors: {errors_down}"
    );
    assert_eq!(
        metric(&m, &["prometheus_notifications_alertmanagers_discovered"]),
        Some(2.0)
    );
    let evals = metric(&m, &["prometheus_rule_evaluations_total", "xpu_health"]).unwrap_or(0.0);
    assert!(evals > 10.0, "{evals}");
    assert_eq!(
        metric(
            &m,
            &["prometheus_rule_evaluation_failures_total", "xpu_health"]
        ),
        Some(0.0)
    );
    println!("rules_e2e: done in {:?}", started.elapsed());
    drop(ep);
    drop(am);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The platform's `prometheus-xpu.yml`, with only the rule path pointed at the repository's copy,
/// runs: both groups and all eight rules are loaded and listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_xpu_config_runs_with_its_rules() {
    let dir = temp_dir("rules-xpu");
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/testdata/prometheus-xpu-local.yml");
    let ep = start(&dir, &config, &[]).await;
    let v = get_json(&format!("{}/api/v1/rules", ep.base)).await;
    let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(names, ["xpu_health", "xpu_sla"], "{v}");
    let rules: usize = groups
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(rules, 8);
    assert_eq!(groups[0]["interval"], 15.0);
    assert_eq!(groups[1]["interval"], 30.0);
    let file = groups[0]["file"].as_str().expect("file").to_string();
    assert!(file.ends_with("xpu-alert-rules.yml"), "{file}");
    let encoded: String = form_urlencoded_byte(&file);
    let by_file = get_json(&format!(
        "{}/api/v1/rules?file[]={encoded}&rule_group[]=xpu_sla",
        ep.base
    ))
    .await;
    assert_eq!(by_file["data"]["groups"].as_array().map(Vec::len), Some(1));
    let other_file = get_json(&format!("{}/api/v1/rules?file[]=other.yml", ep.base)).await;
    assert_eq!(other_file["data"]["groups"], serde_json::json!([]));
    let records = get_json(&format!("{}/api/v1/rules?type=record", ep.base)).await;
    assert_eq!(records["data"]["groups"], serde_json::json!([]));
    let bad = reqwest::get(format!("{}/api/v1/rules?type=bogus", ep.base))
        .await
        .expect("GET");
    assert_eq!(bad.status(), 400);
    drop(ep);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Killed (`SIGKILL`) and started again on the same data, a pending alert keeps its progress: its
/// `activeAt` comes back from `ALERTS_FOR_STATE`, shifted by the downtime, so it lies before the
/// restart instead of at the first evaluation after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_alert_survives_a_restart() {
    let dir = temp_dir("rules-restore");
    let temp = Arc::new(AtomicU64::new(99f64.to_bits()));
    let target = xpu_target(temp).await;
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/testdata/xpu-alert-rules.yml"),
    )
    .expect("read xpu rules")
    .replace("for: 30s", "for: 10m")
    .replace("interval: 15s", "interval: 1s")
    .replace("interval: 30s", "interval: 1s");
    std::fs::write(dir.join("rules.yml"), rules).expect("write rules");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\nscrape_configs:\n  - job_name: xpu\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write config");
    // `for` (10m) must be at least the grace period for Prometheus to restore it.
    let flags = ["--rules.alert.for-grace-period=1s"];
    let ep = start(&dir, &config, &flags).await;
    let base = ep.base.clone();
    let first = wait_for("pending", Duration::from_secs(6), async || {
        api_alert(&base).await.filter(|a| a["state"] == "pending")
    })
    .await;
    // Pending for a while, so ALERTS_FOR_STATE is written a few times.
    tokio::time::sleep(Duration::from_secs(6)).await;
    drop(ep);

    let restarted_at = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let ep = start(&dir, &config, &flags).await;
    let base = ep.base.clone();
    let again = wait_for(
        "pending after the restart",
        Duration::from_secs(6),
        async || api_alert(&base).await.filter(|a| a["state"] == "pending"),
    )
    .await;
    let active_at = |a: &Value| {
        chrono::DateTime::parse_from_rfc3339(a["activeAt"].as_str().unwrap_or_default())
            .map(|t| t.with_timezone(&chrono::Utc))
            .expect("activeAt")
    };
    let (before, after) = (active_at(&first), active_at(&again));
    assert!(
        after < restarted_at,
        "restored activeAt {after} should lie before the restart at {restarted_at} (first activeAt {before})"
    );
    assert!(
        after > before,
        "shifted by the downtime: {before} -> {after}"
    );
    drop(ep);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Percent-encodes everything but unreserved characters, for a path in a query string.
fn form_urlencoded_byte(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
