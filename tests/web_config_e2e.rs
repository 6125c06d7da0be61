//! `--web.config.file` end to end: the real binary serving HTTPS with a self-signed certificate
//! and bcrypt basic auth, spoken to by a real TLS client; and a bad web config refused at start.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, spawn, temp_dir};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pass";

/// Writes a self-signed certificate for localhost/127.0.0.1 and a web config using it; returns
/// the certificate's PEM for the client to trust.
fn write_web_config(dir: &Path) -> String {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let cert_pem = ck.cert.pem();
    std::fs::write(dir.join("server.crt"), &cert_pem).expect("write cert");
    std::fs::write(dir.join("server.key"), ck.signing_key.serialize_pem()).expect("write key");
    // Cost 4 keeps the test fast; the server does not care about the cost.
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    // Relative paths: the server must resolve them against web.yml's directory.
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  {USER}: '{hash}'\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    )
    .expect("write web.yml");
    cert_pem
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .expect("write config");
    path
}

fn tls_client(cert_pem: &str) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("certificate");
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_basic_auth() {
    let dir = temp_dir("webcfg-tls");
    let cert_pem = write_web_config(&dir);
    let config = write_config(&dir);
    let web_config = format!("--web.config.file={}", dir.join("web.yml").display());
    let mut ep = spawn(
        &dir,
        &config,
        &[&web_config, "--web.enable-lifecycle"],
        "https",
    );
    let log = || std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
    let client = tls_client(&cert_pem);

    // Ready once the TLS port answers authenticated requests.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = ep.child.try_wait() {
            panic!("edgeprom exited with {status}; log:\n{}", log());
        }
        let r = client
            .get(format!("{}/-/ready", ep.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "edgeprom did not become ready over HTTPS; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = log();
    assert!(
        started.contains("tls=true") && started.contains("basic_auth=true"),
        "{started}"
    );

    let query = format!("{}/api/v1/query?query=1%2B1", ep.base);

    // No credentials.
    let r = client.get(&query).send().await.expect("GET without auth");
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Basic")),
        "{:?}",
        r.headers()
    );
    assert_eq!(
        r.headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );

    // Wrong password, and an unknown user.
    for (user, password) in [(USER, "wrong"), ("mallory", PASSWORD)] {
        let r = client
            .get(&query)
            .basic_auth(user, Some(password))
            .send()
            .await
            .expect("GET with wrong auth");
        assert_eq!(r.status(), 401, "{user}:{password}");
        assert!(r.headers().contains_key("www-authenticate"));
    }

    // Right password: the query API, health, and /metrics (twice, the second from the cache).
    let r = client
        .get(&query)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("GET query");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&r.text().await.expect("body")).expect("json");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["data"]["result"][1], "2", "{body}");
    for path in ["/-/healthy", "/metrics", "/metrics"] {
        let r = client
            .get(format!("{}{path}", ep.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{path}");
    }

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("plain client");
    let r = plain
        .get(format!(
            "{}/-/healthy",
            ep.base.replacen("https://", "http://", 1)
        ))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP was answered: {r:?}");

    // Graceful shutdown still works over HTTPS: /-/quit ends the process cleanly.
    let r = client
        .post(format!("{}/-/quit", ep.base))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("POST /-/quit");
    assert_eq!(r.status(), 200);
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = ep.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "edgeprom did not stop after /-/quit; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit {status}; log:\n{}", log());
}

#[test]
fn unknown_field_in_web_config_fails_start() {
    let dir = temp_dir("webcfg-bad");
    let config = write_config(&dir);
    let web = dir.join("web-bad.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_fil: server.crt\n").expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeprom"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--web.config.file={}", web.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("edgeprom.log")).expect("log file"),
        ))
        .spawn()
        .expect("start edgeprom");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("edgeprom kept running with an invalid web config");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(dir.join("edgeprom.log")).unwrap_or_default();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("web-bad.yml"), "{stderr}");
    assert!(stderr.contains("cert_fil"), "{stderr}");
}
