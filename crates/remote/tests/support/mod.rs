//! The scripted loopback receiver and the appends the queue tests share.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use edgeprom_model::{Appendable, Labels};
use edgeprom_remote::RemoteWriteMessage;
use edgeprom_storage::Storage;

/// What the receiver does with request number `n` (counting from 0).
pub type Rule = Box<dyn Fn(u64) -> StatusCode + Send + Sync>;

pub struct Received {
    /// Per series (labels text), every sample timestamp accepted, in arrival order.
    pub series: Mutex<BTreeMap<String, Vec<i64>>>,
    pub requests: AtomicU64,
    pub rule: Mutex<Rule>,
}

async fn write(State(r): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let n = r.requests.fetch_add(1, Ordering::SeqCst);
    let status = (r.rule.lock().unwrap())(n);
    if !status.is_success() {
        return status;
    }
    let decoded = edgeprom_remote::decode(&body, RemoteWriteMessage::V1, 64 << 20).unwrap();
    let mut series = r.series.lock().unwrap();
    for s in decoded.batch.series {
        series
            .entry(s.labels.to_string())
            .or_default()
            .extend(s.samples.iter().map(|x| x.t));
    }
    StatusCode::NO_CONTENT
}

pub async fn receiver(rule: Rule) -> (String, Arc<Received>) {
    let r = Arc::new(Received {
        series: Mutex::new(BTreeMap::new()),
        requests: AtomicU64::new(0),
        rule: Mutex::new(rule),
    });
    let app = Router::new()
        .route("/write", post(write))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/write", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

/// `scrapes` commits of 40 series each, one sample per series, timestamps `from..from+scrapes`.
pub fn append(storage: &Storage, from: i64, scrapes: i64) {
    for t in from..from + scrapes {
        let mut app = storage.appender();
        for i in 0..40 {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]);
            app.append(None, &l, t * 1000, t as f64).unwrap();
        }
        app.commit().unwrap();
    }
}
