//! Helpers shared by the end-to-end tests: start the real `edgeprom` binary (and the outside
//! servers some tests compare with or send to) on free loopback ports, talk to them over HTTP, and
//! kill them when the test ends.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running edgeprom process, killed on drop.
pub struct Edgeprom {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
}

impl Drop for Edgeprom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeprom-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts edgeprom with `config` and extra flags on a free loopback port, logging to
/// `dir/edgeprom.log`, without waiting for it; `scheme` is what `base` will use.
pub fn spawn(dir: &Path, config: &Path, extra: &[&str], scheme: &str) -> Edgeprom {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("edgeprom.log")).expect("log file"),
        ))
        .spawn()
        .expect("start edgeprom");
    Edgeprom {
        child,
        base: format!("{scheme}://127.0.0.1:{port}"),
        dir: dir.to_path_buf(),
    }
}

/// Starts edgeprom with `config` and extra flags, and waits (at most 20 s) until it is ready.
pub async fn start(dir: &Path, config: &Path, extra: &[&str]) -> Edgeprom {
    let mut ep = spawn(dir, config, extra, "http");
    let log = || std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = ep.child.try_wait() {
            panic!("edgeprom exited with {status}; log:\n{}", log());
        }
        let ready = reqwest::get(format!("{}/-/ready", ep.base)).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return ep;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edgeprom did not become ready; log:\n{}", log());
}

/// The binary's own `/metrics`, parsed into (series text, value) pairs.
pub async fn self_metrics(ep: &Edgeprom) -> Vec<(String, f64)> {
    let body = reqwest::get(format!("{}/metrics", ep.base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the first series whose text contains every fragment.
pub fn metric(all: &[(String, f64)], fragments: &[&str]) -> Option<f64> {
    all.iter()
        .find(|(s, _)| fragments.iter().all(|f| s.contains(f)))
        .map(|(_, v)| *v)
}

/// For the 1 s interval: (intervals observed, how many were ≤ 1.1 s, how many were ≤ 0.9 s), from
/// `prometheus_target_interval_length_seconds`.
pub fn one_second_intervals(all: &[(String, f64)]) -> (f64, f64, f64) {
    const NAME: &str = "prometheus_target_interval_length_seconds";
    let bucket = |le: &str| {
        metric(all, &[&format!("{NAME}_bucket{{"), "interval=\"1s\"", le]).unwrap_or(0.0)
    };
    (
        metric(all, &[&format!("{NAME}_count{{"), "interval=\"1s\""]).unwrap_or(0.0),
        bucket("le=\"1.1\""),
        bucket("le=\"0.9\""),
    )
}

/// Runs `edgeprom <args>` to completion within `limit` (panicking on failure or overrun), with
/// stdout in `dir/<subcommand>.log`; returns that output.
pub fn run(dir: &Path, args: &[String], limit: Duration) -> String {
    let log = dir.join(format!("{}.log", args[0]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .args(args)
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start edgeprom");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(status.success(), "edgeprom {args:?} failed: {out}");
            return out;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("edgeprom {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An outside server a test talks to (Prometheus, VictoriaMetrics), killed on drop.
pub struct External {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Starts `cmd` (stderr to `log`) listening on loopback `port` and waits (at most 30 s) until
/// `ready_path` answers 2xx.
pub async fn start_external(
    mut cmd: Command,
    port: u16,
    ready_path: &str,
    log: PathBuf,
) -> External {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .spawn()
        .expect("start server");
    let mut p = External {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let read_log = |p: &External| std::fs::read_to_string(&p.log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("{cmd:?} exited with {status}; log:\n{}", read_log(&p));
        }
        let ready = reqwest::get(format!("{}{ready_path}", p.base)).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{cmd:?} not ready in 30 s; log:\n{}", read_log(&p));
}

/// Prometheus (`bin`) on `data` with no scrape targets, on loopback `port`, with `extra` flags;
/// its config and log go into `dir`.
pub async fn start_prometheus(
    bin: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    extra: &[&str],
) -> External {
    let config = dir.join("prometheus-minimal.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("write config");
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra);
    start_external(cmd, port, "/-/ready", dir.join("prometheus.log")).await
}
