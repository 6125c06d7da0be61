//! The real binary, scraping one loopback target that serves a Dynamo frontend body, answers the
//! requests Grafana's Prometheus datasource makes, in Grafana's order and encoding: "Save & test",
//! build info, the metric browser, a step-aligned range query, a bad query; plus error shapes and
//! 405s. Every request goes to 127.0.0.1 and every wait is bounded.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use common::{start, temp_dir};
use serde_json::{Value, json};

const FE_BODY: &str = include_str!("../fixtures/exposition/fe.log");

async fn target() -> String {
    let app = Router::new().route(
        "/metrics",
        get(|| async { ([("content-type", "text/plain; version=0.0.4")], FE_BODY) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let addr = listener.local_addr().expect("target address").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A client like Grafana's: POST form bodies, a Grafana user agent, gzip accepted.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("Grafana/12.0.0")
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

async fn post_form(base: &str, path: &str, form: &[(&str, String)]) -> (u16, String) {
    let r = client()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

async fn get_json(base: &str, path: &str, query: &[(&str, String)]) -> (u16, Value) {
    let r = client()
        .get(format!("{base}{path}"))
        .query(query)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_request_sequence() {
    let addr = target().await;
    let dir = temp_dir("grafana");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n  - job_name: fe\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .expect("write config");
    let ep = start(&dir, &config, &[]).await;
    let base = ep.base.as_str();

    // Save & test: exactly Prometheus's answer.
    let (status, body) = post_form(
        base,
        "/api/v1/query",
        &[("query", "1+1".into()), ("time", "4".into())],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );

    // Heuristics: buildinfo may first come as POST (405 → Grafana retries with GET).
    let (status, _) = post_form(base, "/api/v1/status/buildinfo", &[]).await;
    assert_eq!(status, 405);
    let (status, v) = get_json(base, "/api/v1/status/buildinfo", &[]).await;
    assert_eq!(status, 200);
    assert!(v["data"]["version"].is_string(), "{v}");
    assert!(v["data"].get("features").is_none(), "{v}");

    // Wait (bounded) for three scrapes, so that a step-aligned range ending before now has data.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = post_form(
            base,
            "/api/v1/query",
            &[
                ("query", "count_over_time(up{job=\"fe\"}[1m]) >= 3".into()),
                ("time", now_secs().to_string()),
            ],
        )
        .await;
        let v = parse(&body);
        if v["data"]["result"][0]["value"][1].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no three successful scrapes within 20 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Metric browser: label names (POST form), then metric names (GET only) with match[].
    let now = now_secs().floor() as i64;
    let (start, end) = ((now - 3600).to_string(), (now + 60).to_string());
    let (status, body) = post_form(
        base,
        "/api/v1/labels",
        &[
            ("start", start.clone()),
            ("end", end.clone()),
            ("match[]", "{job=\"fe\"}".into()),
            ("limit", "40000".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let names = parse(&body)["data"].clone();
    for n in ["__name__", "instance", "job", "model", "le"] {
        assert!(
            names.as_array().is_some_and(|a| a.contains(&json!(n))),
            "{n} missing from {names}"
        );
    }
    let (status, v) = get_json(
        base,
        "/api/v1/label/__name__/values",
        &[
            ("start", start.clone()),
            ("end", end.clone()),
            ("match[]", "{job=\"fe\"}".into()),
            ("limit", "40000".into()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let metrics = v["data"].as_array().cloned().unwrap_or_default();
    assert!(
        metrics.contains(&json!("dynamo_frontend_inflight_requests")),
        "{v}"
    );
    assert!(metrics.contains(&json!("up")), "{v}");
    assert!(!metrics.contains(&json!("nonexistent")));

    let (status, body) = post_form(
        base,
        "/api/v1/series",
        &[
            ("match[]", "dynamo_frontend_inflight_requests".into()),
            ("start", start.clone()),
            ("end", end.clone()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        parse(&body)["data"][0]["model"],
        "qwen/qwen3-0.6b",
        "{body}"
    );

    // Range query with Grafana's alignment: start and end floored to a multiple of step.
    let step = 2.0;
    let to = now_secs();
    let aligned = |t: f64| ((t / step).floor() * step).to_string();
    let (status, body) = post_form(
        base,
        "/api/v1/query_range",
        &[
            (
                "query",
                "sum by (model) (dynamo_frontend_inflight_requests)".into(),
            ),
            ("start", aligned(to - 60.0)),
            ("end", aligned(to)),
            ("step", "2".into()),
            ("timeout", "60s".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v = parse(&body);
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = &v["data"]["result"][0];
    assert_eq!(series["metric"], json!({"model": "qwen/qwen3-0.6b"}));
    let values = series["values"].as_array().cloned().unwrap_or_default();
    assert!(!values.is_empty(), "{v}");
    for p in &values {
        let t = p[0].as_f64().expect("float seconds");
        assert_eq!(t % step, 0.0, "points on the step grid: {p}");
        assert_eq!(p[1], "0", "values as strings: {p}");
    }

    // Exemplar probe with millisecond times (Grafana's quirk): success, empty.
    let ms = (now * 1000).to_string();
    let (status, body) = post_form(
        base,
        "/api/v1/query_exemplars",
        &[("query", "test".into()), ("start", ms.clone()), ("end", ms)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"status":"success","data":[]}"#);

    // Recording rules lookup on datasource init, and metadata.
    let (status, v) = get_json(base, "/api/v1/rules", &[]).await;
    assert_eq!((status, v["data"].clone()), (200, json!({"groups": []})));
    let (status, v) = get_json(base, "/api/v1/metadata", &[]).await;
    assert_eq!((status, v["status"].clone()), (200, json!("success")));

    // Targets: the one loopback target, up, with Prometheus's fields.
    let (status, v) = get_json(base, "/api/v1/targets", &[]).await;
    assert_eq!(status, 200);
    let t = &v["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{v}");
    assert_eq!(t["scrapePool"], "fe");
    assert_eq!(t["scrapeUrl"], format!("http://{addr}/metrics"));
    assert_eq!(t["scrapeInterval"], "1s");
    assert_eq!(t["labels"]["job"], "fe");
    assert!(t["lastScrapeDuration"].is_f64(), "{t}");
    assert!(t["lastScrape"].as_str().is_some_and(|s| s.ends_with('Z')));

    // A bad query: 400 with the error envelope, shown by Grafana as "bad_data: …".
    let (status, body) = post_form(base, "/api/v1/query", &[("query", "sum(".into())]).await;
    assert_eq!(status, 400);
    let v = parse(&body);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));

    // Too many points is Prometheus's own 400.
    let (status, body) = post_form(
        base,
        "/api/v1/query_range",
        &[
            ("query", "up".into()),
            ("start", "0".into()),
            ("end", "11001".into()),
            ("step", "1".into()),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        parse(&body)["error"],
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );

    // Methods an endpoint does not take: 405, never 404.
    let c = client();
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/query"),
        (reqwest::Method::PUT, "/api/v1/labels"),
        (reqwest::Method::POST, "/api/v1/label/job/values"),
    ] {
        let r = c
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
    }

    // Admin endpoints are off without --web.enable-admin-api.
    let (status, body) = post_form(base, "/api/v1/admin/tsdb/snapshot", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(parse(&body)["error"], "admin APIs disabled");

    // Flags as Prometheus names them.
    let (_, v) = get_json(base, "/api/v1/status/flags", &[]).await;
    assert_eq!(v["data"]["query.max-concurrency"], "20");
    assert_eq!(v["data"]["query.lookback-delta"], "5m");

    // Federation of the scraped series.
    let r = c
        .get(format!("{base}/federate"))
        .query(&[("match[]", "{job=\"fe\",__name__=\"up\"}")])
        .send()
        .await
        .expect("federate");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.expect("federate body");
    assert!(text.starts_with("# TYPE up untyped\nup{"), "{text}");
}
