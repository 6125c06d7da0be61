//! The built-in web UI in real headless Chromium against the real binary: `/graph` plots a
//! query and `/targets` lists the platform's six jobs up (`edgeprom demo`), every shared
//! dashboard renders with no panel in an error state (on 15 generated minutes imported ending
//! now, as in `dashboards_e2e.rs`), and every page works under `--web.route-prefix` behind
//! `--web.config.file` basic auth. Screenshots go to `<target dir>/web-screenshots/`
//! (`graph.png`, `targets.png`, `<dashboard id>.png`, `prefix-auth-*.png`).
//!
//! Chromium runs with `--dump-dom` (the pages write their progress into the body's data
//! attributes: `data-ready`, `data-series`, `data-panels-error`, …) and `--screenshot`, with a
//! virtual-time budget, a fresh profile and a hard timeout each; what needs typing and clicking
//! (completion on `/graph`, a multi-value variable) goes over the DevTools protocol on a pipe. Without a Chromium on `PATH`
//! (Debian: `apt-get install chromium`) the tests print a skip and pass, unless
//! `EDGEPROM_REQUIRE_CHROMIUM=1`. Network goes to 127.0.0.1 only.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Edgeprom, free_port, run, start, temp_dir};
use serde_json::Value;

/// The platform's six jobs (the demo adds the Kubernetes side).
const PLATFORM_JOBS: [&str; 6] = [
    "nats-prometheus-exporter",
    "etcd-server",
    "dcgm-exporter",
    "dynamo-frontend",
    "dynamo-backend",
    "kvbm-metrics",
];

/// Chromium's binary, or `None` (a skip) when absent and not required.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join(name))
            .find(|p| p.is_file());
        if found.is_some() {
            return found;
        }
    }
    if std::env::var_os("EDGEPROM_REQUIRE_CHROMIUM").is_some_and(|v| v == "1") {
        panic!("EDGEPROM_REQUIRE_CHROMIUM=1 but no chromium on PATH");
    }
    println!("skipped: no chromium on PATH (apt-get install chromium)");
    None
}

/// Where screenshots go: `<target dir>/web-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// One headless Chromium run on `url` with a fresh profile under `work`, killed after 90 s.
/// `mode` is `--dump-dom` or `--screenshot=…`; returns stdout.
fn chrome(bin: &Path, work: &Path, url: &str, mode: &str, height: u32) -> String {
    let profile = work.join(format!("profile-{}", free_port()));
    let out = work.join(format!("chrome-{}.out", free_port()));
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size=1600,{height}"))
        .arg(mode)
        .arg(url)
        .stdout(Stdio::from(std::fs::File::create(&out).expect("out")))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {mode} {url} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    text
}

/// The `data-*` attributes of the dumped page's `<body>`.
fn body_data(dom: &str) -> BTreeMap<String, String> {
    let body = regex::Regex::new(r"<body[^>]*>")
        .expect("regex")
        .find(dom)
        .map_or("", |m| m.as_str())
        .to_string();
    regex::Regex::new(r#"data-([a-z-]+)="([^"]*)""#)
        .expect("regex")
        .captures_iter(&body)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

fn num(data: &BTreeMap<String, String>, key: &str) -> i64 {
    data.get(key).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

/// Dumps `url` until its body says `data-ready="1"` (at most three tries: the first may land
/// before a slow start has warmed up).
fn ready_dom(bin: &Path, work: &Path, url: &str) -> (String, BTreeMap<String, String>) {
    for _ in 0..3 {
        let dom = chrome(bin, work, url, "--dump-dom", 1200);
        let data = body_data(&dom);
        if data.get("ready").is_some_and(|r| r == "1") {
            return (dom, data);
        }
    }
    panic!("{url} never set data-ready");
}

/// Chromium driven over the DevTools protocol, for what needs typing and clicking. The protocol
/// runs on a pipe (`--remote-debugging-pipe`: NUL-terminated JSON, Chromium reading fd 3 and
/// writing fd 4), so no WebSocket client is needed. A watchdog kills Chromium after 120 s, which
/// ends any read that would otherwise block.
struct Cdp {
    child: std::process::Child,
    to: std::io::PipeWriter,
    from: std::io::BufReader<std::io::PipeReader>,
    next: u64,
    session: String,
    profile: PathBuf,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Cdp {
    fn start(bin: &Path, work: &Path) -> Cdp {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (chrome_in, to) = std::io::pipe().expect("pipe");
        let (from, chrome_out) = std::io::pipe().expect("pipe");
        let (r, w) = (chrome_in.as_raw_fd(), chrome_out.as_raw_fd());
        let profile = work.join(format!("cdp-profile-{}", free_port()));
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1600,1000",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The pipe ends
        // are first copied above fd 10 so that placing them on 3 and 4 cannot clobber each other.
        unsafe {
            cmd.pre_exec(move || {
                let r2 = libc::fcntl(r, libc::F_DUPFD, 10);
                let w2 = libc::fcntl(w, libc::F_DUPFD, 10);
                if r2 < 0 || w2 < 0 || libc::dup2(r2, 3) < 0 || libc::dup2(w2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop((chrome_in, chrome_out));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pid, flag) = (child.id() as i32, done.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // SAFETY: kill(2) on the child's pid; at worst it has already exited.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        let mut cdp = Cdp {
            child,
            to,
            from: std::io::BufReader::new(from),
            next: 0,
            session: String::new(),
            profile,
            done,
        };
        let target = cdp.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let attached = cdp.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target["targetId"], "flatten": true}),
        );
        cdp.session = attached["sessionId"].as_str().expect("session").to_string();
        cdp
    }

    /// Sends one command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        use std::io::{BufRead, Write};
        self.next += 1;
        let mut msg = serde_json::json!({"id": self.next, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed the DevTools pipe during {method}");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).expect("DevTools JSON");
            if v["id"] == self.next {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page; its value (promises awaited).
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy (at most 20 s) and returns its value.
    fn until(&mut self, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.eval(expr);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(Instant::now() < deadline, "never true: {expr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn open(&mut self, url: &str) {
        // Marks the old document so that its data-ready is not taken for the new one's.
        self.eval("document.body && (document.body.dataset.ready = 'old')");
        self.call("Page.navigate", serde_json::json!({"url": url}));
        self.until("document.body && document.body.dataset.ready === '1'");
    }

    /// Types `text` into the expression box as if the caret ended there; the suggestions shown
    /// (the old list is cleared first, so what appears is the answer to `text`).
    fn suggest(&mut self, text: &str) -> Vec<String> {
        self.eval(&format!(
            "{{ const l = document.querySelector('ul.suggest'); l.replaceChildren(); l.hidden = true; \
             const t = document.querySelector('textarea.expr'); t.focus(); t.value = {text:?}; \
             t.selectionStart = t.selectionEnd = t.value.length; t.dispatchEvent(new Event('input')); }}"
        ));
        let shown = self.until(
            "(() => { const l = document.querySelector('ul.suggest'); \
             return !l.hidden && l.children.length && [...l.children].map((li) => li.dataset.value); })()",
        );
        serde_json::from_value(shown).expect("suggestions")
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[test]
fn graph_plots_and_targets_lists_the_six_jobs_up() {
    let Some(bin) = chromium() else { return };
    let dir = temp_dir("web-demo");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .arg("demo")
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("edgeprom.log")).expect("log"),
        ))
        .spawn()
        .expect("start edgeprom demo");
    let ep = Edgeprom {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir: dir.clone(),
    };
    // Every target of the platform jobs up in the API first (the slowest scrapes every 10 s).
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        // (job, health) of every target.
        let targets: Vec<(String, String)> = client
            .get(format!("{}/api/v1/targets", ep.base))
            .send()
            .and_then(|r| r.text())
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|v| {
                v["data"]["activeTargets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
                        (s("scrapePool"), s("health"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let up = |job: &str| {
            let of_job: Vec<_> = targets.iter().filter(|(j, _)| j == job).collect();
            !of_job.is_empty() && of_job.iter().all(|(_, h)| h == "up")
        };
        if PLATFORM_JOBS.iter().all(|j| up(j)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs not up within 45 s: {targets:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let shots = screenshot_dir();

    let graph = format!("{}/graph?expr=sum%20by%20(job)%20(up)&range=5m", ep.base);
    let (dom, data) = ready_dom(&bin, &dir, &graph);
    assert!(!data.contains_key("error"), "graph error: {data:?}");
    assert!(num(&data, "series") >= 6, "graph series: {data:?}");
    assert!(dom.contains("<canvas"), "no chart canvas on /graph");
    chrome(
        &bin,
        &dir,
        &graph,
        &format!("--screenshot={}", shots.join("graph.png").display()),
        900,
    );

    let targets = format!("{}/targets", ep.base);
    let (dom, data) = ready_dom(&bin, &dir, &targets);
    assert!(num(&data, "jobs") >= 6, "{data:?}");
    for job in PLATFORM_JOBS {
        let section = regex::Regex::new(&format!(
            r#"data-job="{job}" data-up="(\d+)" data-total="(\d+)""#
        ))
        .expect("regex")
        .captures(&dom)
        .unwrap_or_else(|| panic!("/targets does not list {job}"));
        assert!(
            &section[1] != "0" && section[1] == section[2],
            "{job}: {} of {} up",
            &section[1],
            &section[2]
        );
    }
    chrome(
        &bin,
        &dir,
        &targets,
        &format!("--screenshot={}", shots.join("targets.png").display()),
        1400,
    );

    // Typing and clicking: completion on /graph, a multi-value variable on a dashboard.
    let mut cdp = Cdp::start(&bin, &dir);
    cdp.open(&format!("{}/graph", ep.base));
    let names = cdp.suggest("dynamo_frontend_req");
    assert!(
        names.iter().any(|n| n == "dynamo_frontend_requests_total"),
        "{names:?}"
    );
    assert_eq!(cdp.suggest("up{jo"), ["job"]);
    let values = cdp.suggest("up{job=\"dynamo-f");
    assert_eq!(values, ["dynamo-frontend"]);
    // Tab takes the highlighted suggestion (a value with its closing quote); Enter runs the
    // expression.
    cdp.eval("document.querySelector('textarea.expr').dispatchEvent(new KeyboardEvent('keydown', {key: 'Tab'}))");
    assert_eq!(
        cdp.eval("document.querySelector('textarea.expr').value"),
        "up{job=\"dynamo-frontend\""
    );
    cdp.eval("{ const t = document.querySelector('textarea.expr'); t.value = 'up{job=\"dynamo-frontend\"}'; \
              document.body.dataset.ready = '0'; t.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); }");
    cdp.until("document.body.dataset.ready === '1'");
    assert_eq!(cdp.eval("document.body.dataset.series"), "1");
    assert!(
        cdp.eval("location.search")
            .as_str()
            .unwrap_or("")
            .contains("expr=up%7Bjob"),
        "URL keeps the expression"
    );

    // The operator's namespaces exist once it has been scraped (every 10 s).
    cdp.until(
        "fetch('api/v1/label/namespace/values?match[]=dynamo_operator_reconcile_total') \
         .then((r) => r.json()).then((j) => j.data.length)",
    );
    cdp.open(&format!(
        "{}/dashboards?d=dynamo-operator&refresh=off",
        ep.base
    ));
    cdp.eval("document.querySelector('.multi button').click()");
    let options =
        cdp.eval("[...document.querySelectorAll('.multi-menu label')].map((l) => l.dataset.value)");
    assert!(
        options[0] == "$__all" && options.as_array().is_some_and(|o| o.len() > 1),
        "{options}"
    );
    let rounds = cdp.eval("Number(document.body.dataset.rounds)");
    cdp.eval("document.querySelectorAll('.multi-menu input')[1].click(); document.querySelector('h1').click()");
    cdp.until(&format!("Number(document.body.dataset.rounds) > {rounds}"));
    let search = cdp.eval("location.search");
    assert!(
        search.as_str().unwrap_or("").contains(&format!(
            "var-namespace={}",
            options[1].as_str().unwrap_or("")
        )),
        "{search}"
    );
    assert_eq!(cdp.eval("document.body.dataset.panelsError"), "0");
    drop(cdp);
    drop(ep);
    let _ = std::fs::remove_dir_all(dir);
}

/// 15 generated minutes of every generator job imported ending now, served with nothing to
/// scrape (the data `dashboards_e2e.rs` plays the same panels against).
fn server_with_generated_data(dir: &Path, extra: &[&str]) -> Edgeprom {
    let rec = dir.join("rec");
    run(
        dir,
        &[
            "generate".into(),
            format!("--out={}", rec.display()),
            "--workers=4".into(),
            "--duration-seconds=900".into(),
            "--seed=1".into(),
        ],
        Duration::from_secs(60),
    );
    run(
        dir,
        &[
            "replay".into(),
            "--import".into(),
            "--shift=now".into(),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            rec.display().to_string(),
        ],
        Duration::from_secs(120),
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").expect("config");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(start(dir, &config, extra))
}

#[test]
fn every_shared_dashboard_renders_without_a_panel_in_error() {
    let Some(bin) = chromium() else { return };
    let dir = temp_dir("web-dashboards");
    let ep = server_with_generated_data(&dir, &[]);
    let list = reqwest::blocking::get(format!("{}/ui/dashboards", ep.base))
        .and_then(|r| r.text())
        .expect("dashboard list");
    let list: Value = serde_json::from_str(&list).expect("dashboard list JSON");
    let list = list.as_array().expect("list").clone();
    // 18 Prometheus dashboards and the Loki one (fixtures/dashboards/SOURCES.md).
    assert_eq!(list.len(), 19, "dashboards listed");
    let (dom, data) = ready_dom(&bin, &dir, &format!("{}/dashboards", ep.base));
    assert_eq!(num(&data, "dashboards"), 19, "{data:?}");
    assert!(dom.contains("dashboards?d=dynamo"), "list links");

    let shots = screenshot_dir();
    let mut failures = Vec::new();
    let mut total = (0, 0, 0);
    for d in &list {
        let id = d["id"].as_str().expect("id");
        let url = format!("{}/dashboards?d={id}&refresh=off&expand=1", ep.base);
        let (dom, data) = ready_dom(&bin, &dir, &url);
        let (panels, errors, nodata) = (
            num(&data, "panels"),
            num(&data, "panels-error"),
            num(&data, "panels-nodata"),
        );
        println!(
            "  {id}: {panels} panels, {errors} in error, {nodata} without data, {} unsupported, drawn at {} ms",
            num(&data, "panels-unsupported"),
            num(&data, "render-ms")
        );
        total = (total.0 + panels, total.1 + errors, total.2 + nodata);
        if panels <= 0 || errors != 0 {
            let messages: Vec<&str> = dom
                .split("class=\"panel-msg error\">")
                .skip(1)
                .map(|s| &s[..s.len().min(300)])
                .collect();
            failures.push(format!("{id}: {data:?}\n    {}", messages.join("\n    ")));
        }
        let height = num(&data, "height").clamp(600, 8000) as u32;
        let shot = shots.join(format!("{id}.png"));
        chrome(
            &bin,
            &dir,
            &url,
            &format!("--screenshot={}", shot.display()),
            height,
        );
        assert!(shot.is_file(), "no screenshot {}", shot.display());
    }
    println!(
        "{} dashboards, {} panels, {} in error, {} without data; screenshots in {}",
        list.len(),
        total.0,
        total.1,
        total.2,
        shots.display()
    );
    assert!(
        failures.is_empty(),
        "panels in error:\n{}",
        failures.join("\n")
    );
    drop(ep);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_page_works_under_a_route_prefix_behind_basic_auth() {
    let Some(bin) = chromium() else { return };
    let dir = temp_dir("web-prefix-auth");
    // Cost 4 keeps the test fast; the server does not care about the cost.
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    std::fs::write(
        dir.join("web.yml"),
        format!("basic_auth_users:\n  admin: '{hash}'\n"),
    )
    .expect("web.yml");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1s\n").expect("config");
    let web = format!("--web.config.file={}", dir.join("web.yml").display());
    let ep = common::spawn(&dir, &config, &["--web.route-prefix=/edge", &web], "http");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: &str, auth: bool| {
        let r = client.get(format!("{}{path}", ep.base));
        let r = if auth {
            r.basic_auth("admin", Some("s3cret"))
        } else {
            r
        };
        r.send().expect("GET")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = || {
        client
            .get(format!("{}/edge/-/ready", ep.base))
            .basic_auth("admin", Some("s3cret"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    };
    while !ready() {
        assert!(Instant::now() < deadline, "not ready within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get("/edge", true).headers()["location"], "/edge/graph");
    assert_eq!(get("/edge/", true).headers()["location"], "/edge");
    let mut version = String::new();
    let versioned = regex::Regex::new(r"static/([0-9a-f]+)/").expect("regex");
    for page in [
        "graph",
        "targets",
        "alerts",
        "rules",
        "status",
        "dashboards",
    ] {
        assert_eq!(
            get(&format!("/edge/{page}"), false).status(),
            401,
            "{page} without auth"
        );
        let r = get(&format!("/edge/{page}"), true);
        assert_eq!(r.status(), 200, "{page}");
        let html = r.text().expect("html");
        version = versioned.captures(&html).expect("asset version")[1].to_string();
    }
    for asset in [
        "js/app.js",
        "js/dashboards.js",
        "vendor/uPlot.iife.min.js",
        "app.css",
    ] {
        let path = format!("/edge/static/{version}/{asset}");
        assert_eq!(get(&path, false).status(), 401, "{asset} without auth");
        assert_eq!(get(&path, true).status(), 200, "{asset}");
    }
    assert_eq!(get("/edge/ui/dashboards", false).status(), 401);

    // The browser takes the credentials from the URL once and resends them for the page's
    // assets and API calls.
    let base = ep.base.replace("http://", "http://admin:s3cret@");
    let (dom, data) = ready_dom(
        &bin,
        &dir,
        &format!("{base}/edge/graph?expr=vector(1)&range=5m"),
    );
    assert!(
        !data.contains_key("error") && num(&data, "series") == 1,
        "{data:?}"
    );
    assert!(dom.contains("<canvas"), "no chart canvas");
    for page in ["targets", "alerts", "rules", "status"] {
        let (_, data) = ready_dom(&bin, &dir, &format!("{base}/edge/{page}"));
        assert!(!data.contains_key("error"), "{page}: {data:?}");
    }
    let (_, data) = ready_dom(&bin, &dir, &format!("{base}/edge/dashboards"));
    assert_eq!(num(&data, "dashboards"), 19, "{data:?}");
    // No data here: panels say so, none fails.
    let url = format!("{base}/edge/dashboards?d=dynamo&refresh=off");
    let (_, data) = ready_dom(&bin, &dir, &url);
    assert!(
        num(&data, "panels") > 0 && num(&data, "panels-error") == 0,
        "{data:?}"
    );
    // Auto-refresh: every 5 s of the browser's (virtual, 30 s) time the panels query again.
    let (_, data) = ready_dom(
        &bin,
        &dir,
        &format!("{base}/edge/dashboards?d=dynamo&refresh=5s"),
    );
    assert!(num(&data, "rounds") >= 3, "auto-refresh: {data:?}");
    let shots = screenshot_dir();
    chrome(
        &bin,
        &dir,
        &url,
        &format!(
            "--screenshot={}",
            shots.join("prefix-auth-dynamo.png").display()
        ),
        1200,
    );
    drop(ep);
    let _ = std::fs::remove_dir_all(dir);
}
