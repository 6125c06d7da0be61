//! The client against a scripted axum receiver on loopback: headers, auth, outcome
//! classification, `Retry-After`, the 2.0 → 1.0 fallback and the timeout.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use edgeprom_config::{Config, RemoteWriteConfig};
use edgeprom_model::{Labels, Sample};
use edgeprom_remote::{
    BatchSeries, RemoteWriteClient, RemoteWriteMessage, SendError, WriteBatch, decode,
    receive::message_of,
};

/// What the receiver answers to one request.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: "",
            delay: Duration::ZERO,
        }
    }
    fn with(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }
    fn written(self, n: u64) -> Reply {
        self.with("X-Prometheus-Remote-Write-Samples-Written", &n.to_string())
            .with("X-Prometheus-Remote-Write-Histograms-Written", "0")
            .with("X-Prometheus-Remote-Write-Exemplars-Written", "0")
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<(HeaderMap, Bytes)>>,
}

async fn receive(State(s): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    s.seen
        .lock()
        .expect("lock")
        .push((headers.clone(), body.clone()));
    let reply = s
        .replies
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| Reply::status(204).written(0));
    tokio::time::sleep(reply.delay).await;
    let mut resp = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (n, v) in reply.headers {
        resp.headers_mut()
            .insert(n, v.parse().expect("header value"));
    }
    resp
}

struct Receiver {
    url: String,
    script: Arc<Script>,
}

impl Receiver {
    async fn start(replies: Vec<Reply>) -> Receiver {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            seen: Mutex::default(),
        });
        let app = Router::new()
            .route("/api/v1/write", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/api/v1/write"),
            script,
        }
    }

    fn seen(&self) -> Vec<(HeaderMap, Bytes)> {
        self.script.seen.lock().expect("lock").clone()
    }
}

fn config(url: &str, extra: &str) -> RemoteWriteConfig {
    let yaml = format!("remote_write:\n  - url: {url}\n{extra}");
    let mut c = Config::parse(&yaml, Path::new("/cfg/prometheus.yml")).expect("config");
    c.remote_write.remove(0)
}

fn batch() -> WriteBatch {
    WriteBatch {
        series: vec![BatchSeries {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "node")]),
            samples: vec![Sample { t: 1000, v: 1.0 }, Sample { t: 2000, v: 0.0 }],
            ..Default::default()
        }],
        metadata: vec![],
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test took too long")
}

#[tokio::test]
async fn v1_request_has_the_specs_headers_auth_and_body() {
    bounded(async {
        let rx = Receiver::start(vec![Reply::status(204)]).await;
        let extra = "    headers: {X-Scope-OrgID: tenant-7}\n    basic_auth: {username: edge, password: s3cret}\n";
        let client = RemoteWriteClient::new(&config(&rx.url, extra)).expect("client");
        let stats = client.send(&batch()).await.expect("sent");
        // No -Written headers from a 1.0 receiver: a 2xx means everything was written.
        assert_eq!((stats.samples, stats.confirmed), (2, false));

        let seen = rx.seen();
        let (h, body) = &seen[0];
        assert_eq!(stats.request_bytes, body.len() as u64);
        assert_eq!(header(h, "content-type"), "application/x-protobuf");
        assert_eq!(header(h, "content-encoding"), "snappy");
        assert_eq!(header(h, "x-prometheus-remote-write-version"), "0.1.0");
        assert!(header(h, "user-agent").starts_with("edgeprom/"), "{h:?}");
        assert_eq!(header(h, "x-scope-orgid"), "tenant-7");
        // base64("edge:s3cret")
        assert_eq!(header(h, "authorization"), "Basic ZWRnZTpzM2NyZXQ=");
        let got = decode(body, RemoteWriteMessage::V1, 1 << 20).expect("decodes");
        assert_eq!(got.batch, batch());
    })
    .await;
}

#[tokio::test]
async fn v2_request_reports_the_receivers_counts() {
    bounded(async {
        let rx = Receiver::start(vec![Reply::status(204).written(2)]).await;
        let extra = "    protobuf_message: io.prometheus.write.v2.Request\n    bearer_token: t0k\n";
        let client = RemoteWriteClient::new(&config(&rx.url, extra)).expect("client");
        let stats = client.send(&batch()).await.expect("sent");
        assert_eq!((stats.samples, stats.confirmed), (2, true));
        assert_eq!(client.message(), RemoteWriteMessage::V2);
        let seen = rx.seen();
        let (h, body) = &seen[0];
        assert_eq!(
            header(h, "content-type"),
            "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        );
        assert_eq!(
            message_of(Some(header(h, "content-type"))),
            Ok(RemoteWriteMessage::V2)
        );
        assert_eq!(header(h, "x-prometheus-remote-write-version"), "2.0.0");
        assert_eq!(header(h, "authorization"), "Bearer t0k");
        let got = decode(body, RemoteWriteMessage::V2, 1 << 20).expect("decodes");
        assert_eq!(got.batch, batch());
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retryable_with_retry_after() {
    bounded(async {
        let rx = Receiver::start(vec![
            Reply::status(503).with("Retry-After", "7"),
            Reply::status(500),
        ])
        .await;
        let client = RemoteWriteClient::new(&config(&rx.url, "")).expect("client");
        let e = client.send(&batch()).await.expect_err("503");
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let e = client.send(&batch()).await.expect_err("500");
        assert!(e.is_retryable() && e.retry_after().is_none(), "{e}");
    })
    .await;
}

#[tokio::test]
async fn too_many_requests_is_retried_only_when_configured() {
    bounded(async {
        let reply = Reply::status(429).with("Retry-After", "3");
        let rx = Receiver::start(vec![reply.clone(), reply]).await;
        let off = RemoteWriteClient::new(&config(&rx.url, "")).expect("client");
        let e = off.send(&batch()).await.expect_err("429");
        assert!(!e.is_retryable(), "{e}");
        let on = RemoteWriteClient::new(&config(
            &rx.url,
            "    queue_config: {retry_on_http_429: true}\n",
        ))
        .expect("client");
        let e = on.send(&batch()).await.expect_err("429");
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    })
    .await;
}

#[tokio::test]
async fn client_errors_are_permanent_with_the_first_body_line() {
    bounded(async {
        let mut reply = Reply::status(400);
        reply.body = "out of order sample\nsecond line";
        let rx = Receiver::start(vec![reply]).await;
        let client = RemoteWriteClient::new(&config(&rx.url, "")).expect("client");
        let e = client.send(&batch()).await.expect_err("400");
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "server returned HTTP status 400 Bad Request: out of order sample"
        );
    })
    .await;
}

#[tokio::test]
async fn v2_falls_back_to_v1_on_415() {
    bounded(async {
        let rx = Receiver::start(vec![Reply::status(415), Reply::status(204)]).await;
        let extra = "    protobuf_message: io.prometheus.write.v2.Request\n";
        let client = RemoteWriteClient::new(&config(&rx.url, extra)).expect("client");
        let stats = client.send(&batch()).await.expect("resent as 1.0");
        assert_eq!(stats.samples, 2);
        assert_eq!(client.message(), RemoteWriteMessage::V1);
        client.send(&batch()).await.expect("stays 1.0");
        let versions: Vec<String> = rx
            .seen()
            .iter()
            .map(|(h, _)| header(h, "x-prometheus-remote-write-version").to_string())
            .collect();
        assert_eq!(versions, ["2.0.0", "0.1.0", "0.1.0"]);
    })
    .await;
}

/// The spec: a 2xx to a 2.0 request without any `-Written` header is a 1.0 receiver that decoded
/// an empty request; take it as 415.
#[tokio::test]
async fn v2_falls_back_to_v1_when_the_written_headers_are_missing() {
    bounded(async {
        let rx = Receiver::start(vec![Reply::status(200), Reply::status(200)]).await;
        let extra = "    protobuf_message: io.prometheus.write.v2.Request\n";
        let client = RemoteWriteClient::new(&config(&rx.url, extra)).expect("client");
        let stats = client.send(&batch()).await.expect("resent as 1.0");
        assert_eq!((stats.samples, stats.confirmed), (2, false));
        assert_eq!(client.message(), RemoteWriteMessage::V1);
        let seen = rx.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(header(&seen[1].0, "content-type"), "application/x-protobuf");
    })
    .await;
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retryable() {
    bounded(async {
        let mut slow = Reply::status(204);
        slow.delay = Duration::from_secs(5);
        let rx = Receiver::start(vec![slow]).await;
        let client = RemoteWriteClient::new(&config(&rx.url, "    remote_timeout: 200ms\n"))
            .expect("client");
        let started = std::time::Instant::now();
        let e = client.send(&batch()).await.expect_err("timeout");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            matches!(e, SendError::Transport { timeout: true, .. }),
            "{e:?}"
        );
        assert!(e.is_retryable());

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let url = format!("http://127.0.0.1:{port}/api/v1/write");
        let client = RemoteWriteClient::new(&config(&url, "")).expect("client");
        let e = client.send(&batch()).await.expect_err("refused");
        assert!(
            matches!(e, SendError::Transport { timeout: false, .. }),
            "{e:?}"
        );
        assert!(e.is_retryable());
    })
    .await;
}
