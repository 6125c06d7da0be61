//! The scrape manager against real HTTP targets on loopback: content negotiation, gzip, OpenMetrics,
//! body size limits, missing Content-Type, and stale markers when a target goes away.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use edgeprom_config::Config;
use edgeprom_model::{Labels, is_stale_nan};
use edgeprom_scrape::{Manager, ScrapeMetrics, TargetHealth};
use edgeprom_storage::{Options, Storage};

type Handler = Arc<dyn Fn(&HeaderMap) -> (Vec<(&'static str, String)>, Vec<u8>) + Send + Sync>;

/// Serves whatever `handler` returns, remembering the request headers it saw last.
async fn serve(handler: Handler) -> (String, Arc<Mutex<Option<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let app = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let handler = handler.clone();
            let seen = seen2.clone();
            async move {
                let (hdrs, body) = handler(&headers);
                *seen.lock().unwrap() = Some(headers);
                let mut resp = body.into_response();
                resp.headers_mut().remove("content-type");
                for (k, v) in hdrs {
                    resp.headers_mut().insert(k, v.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

struct Setup {
    storage: Arc<Storage>,
    manager: Manager,
}

fn setup(name: &str, yaml: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("edgeprom-http-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let storage = Arc::new(Storage::open(&dir, Options::default()).unwrap());
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(ScrapeMetrics::register(&mut registry));
    let manager = Manager::new(storage.clone(), metrics);
    let cfg = Config::parse(yaml, Path::new("test.yml")).unwrap();
    manager.apply_config(&cfg);
    Setup { storage, manager }
}

fn job(addr: &str, extra: &str) -> String {
    format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 1s\n{extra}    static_configs: [{{targets: ['{addr}']}}]\n"
    )
}

impl Setup {
    async fn wait_scraped(&self) -> edgeprom_scrape::TargetStatus {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let t = self
                .manager
                .targets()
                .into_iter()
                .next()
                .expect("one target");
            if t.health != TargetHealth::Unknown {
                return t;
            }
            assert!(Instant::now() < deadline, "target never scraped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn values(&self, addr: &str, pairs: &[(&str, &str)]) -> Vec<f64> {
        let mut all = vec![("instance", addr), ("job", "t")];
        all.extend_from_slice(pairs);
        self.storage
            .samples(&Labels::from_pairs(all), i64::MIN, i64::MAX)
            .iter()
            .map(|s| s.v)
            .collect()
    }
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[tokio::test]
async fn sends_prometheus_accept_header_and_reads_gzip() {
    let (addr, seen) = serve(Arc::new(|_| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"# TYPE m counter\nm_total{a=\"x,y=z}\"} 7\n")
            .unwrap();
        (
            vec![
                ("content-type", TEXT.into()),
                ("content-encoding", "gzip".into()),
            ],
            gz.finish().unwrap(),
        )
    }))
    .await;
    let s = setup("gzip", &job(&addr, ""));
    let t = s.wait_scraped().await;
    assert_eq!(t.health, TargetHealth::Up, "{}", t.last_error);
    assert_eq!(
        s.values(&addr, &[("__name__", "m_total"), ("a", "x,y=z}")]),
        [7.0]
    );
    let headers = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        headers["accept"].to_str().unwrap(),
        edgeprom_exposition::DEFAULT_ACCEPT_HEADER
    );
    assert!(
        headers["accept-encoding"]
            .to_str()
            .unwrap()
            .contains("gzip")
    );
    assert!(headers.contains_key("x-prometheus-scrape-timeout-seconds"));
    s.manager.stop();
}

#[tokio::test]
async fn reads_openmetrics_with_exemplars() {
    let (addr, _) = serve(Arc::new(|_| {
        (
            vec![(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
            )],
            b"# TYPE req counter\nreq_total 3 # {trace_id=\"abc\"} 1.0 1700000000.5\n# EOF\n"
                .to_vec(),
        )
    }))
    .await;
    let s = setup("om", &job(&addr, ""));
    let t = s.wait_scraped().await;
    assert_eq!(t.health, TargetHealth::Up, "{}", t.last_error);
    assert_eq!(s.values(&addr, &[("__name__", "req_total")]), [3.0]);
    s.manager.stop();
}

#[tokio::test]
async fn body_size_limit_fails_the_scrape() {
    let (addr, _) = serve(Arc::new(|_| {
        let body = "big_metric_name_padding_padding 1\n"
            .repeat(40_000)
            .into_bytes();
        (vec![("content-type", TEXT.into())], body)
    }))
    .await;
    let s = setup("limit", &job(&addr, "    body_size_limit: 100KB\n"));
    let t = s.wait_scraped().await;
    assert_eq!(t.health, TargetHealth::Down);
    assert!(
        t.last_error.contains("body size limit exceeded"),
        "{}",
        t.last_error
    );
    assert_eq!(s.values(&addr, &[("__name__", "up")]), [0.0]);
    s.manager.stop();
}

#[tokio::test]
async fn missing_content_type_needs_a_fallback_protocol() {
    let handler: Handler = Arc::new(|_| (vec![], b"m 1\n".to_vec()));
    let (addr, _) = serve(handler.clone()).await;
    let s = setup("noct", &job(&addr, ""));
    let t = s.wait_scraped().await;
    assert_eq!(t.health, TargetHealth::Down);
    assert!(t.last_error.contains("Content-Type"), "{}", t.last_error);
    s.manager.stop();

    let (addr, _) = serve(handler).await;
    let s = setup(
        "fallback",
        &job(&addr, "    fallback_scrape_protocol: PrometheusText0.0.4\n"),
    );
    let t = s.wait_scraped().await;
    assert_eq!(t.health, TargetHealth::Up, "{}", t.last_error);
    s.manager.stop();
}

#[tokio::test]
async fn removed_targets_get_stale_markers() {
    let (addr, _) = serve(Arc::new(|_| {
        (vec![("content-type", TEXT.into())], b"m 1\n".to_vec())
    }))
    .await;
    let s = setup("stale", &job(&addr, ""));
    s.wait_scraped().await;
    s.manager
        .apply_config(&Config::parse("scrape_configs: []\n", Path::new("t.yml")).unwrap());
    // The marker is written when the next scrape would have happened (≤ 1 s).
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let m = s.values(&addr, &[("__name__", "m")]);
        let up = s.values(&addr, &[("__name__", "up")]);
        if m.last().is_some_and(|v| is_stale_nan(*v)) && up.last().is_some_and(|v| is_stale_nan(*v))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no stale markers: m={m:?} up={up:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
