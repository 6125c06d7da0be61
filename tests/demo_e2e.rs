//! `edgeprom demo` from nothing: the real binary starts the generator's targets for the six
//! Dynamo jobs (and the Kubernetes-side ones) on loopback and scrapes them; its own `/metrics`
//! shows every job up within a bounded wait, and so does `up` through `/api/v1/query`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Edgeprom, free_port, self_metrics, temp_dir};

const JOBS: [&str; 12] = [
    "nats-prometheus-exporter",
    "etcd-server",
    "dcgm-exporter",
    "dynamo-frontend",
    "dynamo-backend",
    "kvbm-metrics",
    // What the Kubernetes dashboards read besides the platform's six jobs.
    "kube-state-metrics",
    "cadvisor",
    "node-exporter",
    "dynamo-planner",
    "dynamo-operator",
    "xpu-smi-exporter",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_every_job_up() {
    let dir = temp_dir("demo");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .arg("demo")
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("stdout.log")).expect("stdout log"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("edgeprom.log")).expect("log file"),
        ))
        .spawn()
        .expect("start edgeprom demo");
    let mut ep = Edgeprom {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir: dir.clone(),
    };
    let log = || std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();

    // The slowest job scrapes every 10 s, and its first scrape lands anywhere in that interval.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut missing: Vec<&str> = JOBS.to_vec();
    while Instant::now() < deadline {
        if let Ok(Some(status)) = ep.child.try_wait() {
            panic!("edgeprom demo exited with {status}; log:\n{}", log());
        }
        if let Ok(Ok(all)) =
            tokio::time::timeout(Duration::from_secs(2), self_metrics_checked(&ep)).await
        {
            missing = JOBS
                .iter()
                .copied()
                .filter(|job| {
                    let ups: Vec<f64> = all
                        .iter()
                        .filter(|(s, _)| {
                            s.starts_with("edgeprom_target_up{")
                                && s.contains(&format!("job=\"{job}\""))
                        })
                        .map(|(_, v)| *v)
                        .collect();
                    ups.is_empty() || ups.iter().any(|v| *v != 1.0)
                })
                .collect();
            if missing.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        missing.is_empty(),
        "jobs not up: {missing:?}; log:\n{}",
        log()
    );
    let stdout = std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default();
    assert!(stdout.contains("/api/v1/query?query=up"), "{stdout}");

    // What a user asks first: `up` through the query API, one series per target, all 1.
    let text = reqwest::get(format!("{}/api/v1/query?query=up", ep.base))
        .await
        .expect("GET /api/v1/query")
        .text()
        .await
        .expect("body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(body["status"], "success", "{body}");
    let result = body["data"]["result"].as_array().expect("vector result");
    for job in JOBS {
        let ups: Vec<&serde_json::Value> = result
            .iter()
            .filter(|s| s["metric"]["job"] == job)
            .collect();
        assert!(!ups.is_empty(), "no up series for {job}: {body}");
        assert!(
            ups.iter().all(|s| s["value"][1] == "1"),
            "{job} not up: {body}"
        );
    }
    assert!(dir.join("data").join("prometheus.yml").is_file());
}

/// `self_metrics`, but an error instead of a panic while the server is still starting.
async fn self_metrics_checked(ep: &Edgeprom) -> Result<Vec<(String, f64)>, reqwest::Error> {
    reqwest::get(format!("{}/-/ready", ep.base))
        .await?
        .error_for_status()?;
    Ok(self_metrics(ep).await)
}
