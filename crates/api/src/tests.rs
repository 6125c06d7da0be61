//! Router tests over a real storage in a temporary directory.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use edgeprom_model::{Appendable, Labels};
use edgeprom_storage::Storage;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{Api, ApiOptions, router};

struct Fixture {
    _dir: tempfile::TempDir,
    api: Arc<Api>,
}

/// Series `up{job="a",instance="x"}` = 1 and `up{job="b",instance="y"}` = 0 every 15 s from 0 to
/// 600 s, plus `weird` with NaN/±Inf values at 0, 15, 30 s.
fn fixture(options: ApiOptions) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Arc::new(Storage::open(dir.path(), Default::default()).expect("open storage"));
    {
        let mut app = storage.appender();
        let a = Labels::from_pairs([("__name__", "up"), ("instance", "x"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("instance", "y"), ("job", "b")]);
        for i in 0..=40 {
            app.append(None, &a, i * 15_000, 1.0).expect("append");
            app.append(None, &b, i * 15_000, 0.0).expect("append");
        }
        let w = Labels::from_pairs([("__name__", "weird"), ("job", "a")]);
        for (i, v) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
            .into_iter()
            .enumerate()
        {
            app.append(None, &w, i as i64 * 15_000, v).expect("append");
        }
        app.commit().expect("commit");
    }
    Fixture {
        _dir: dir,
        api: Arc::new(Api::new(storage, None, options)),
    }
}

async fn call(f: &Fixture, method: Method, uri: &str, form: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match form {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = router(f.api.clone())
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get_json(f: &Fixture, uri: &str) -> (StatusCode, Value) {
    let (s, b) = call(f, Method::GET, uri, None).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

async fn post_json(f: &Fixture, uri: &str, form: &str) -> (StatusCode, Value) {
    let (s, b) = call(f, Method::POST, uri, Some(form)).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

#[tokio::test]
async fn grafana_health_check_is_exact() {
    let f = fixture(ApiOptions::default());
    let (s, body) = call(
        &f,
        Method::POST,
        "/api/v1/query",
        Some("query=1%2B1&time=4"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
    let (s, body) = call(&f, Method::GET, "/api/v1/query?query=1%2B1&time=4", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains(r#""result":[4,"2"]"#), "{body}");
}

#[tokio::test]
async fn instant_vector_with_labels_and_float_time() {
    let f = fixture(ApiOptions::default());
    let (s, v) = get_json(&f, "/api/v1/query?query=up&time=100.5").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"],
        json!([
            {"metric": {"__name__": "up", "instance": "x", "job": "a"}, "value": [100.5, "1"]},
            {"metric": {"__name__": "up", "instance": "y", "job": "b"}, "value": [100.5, "0"]},
        ])
    );
    assert!(v.get("warnings").is_none());
}

#[tokio::test]
async fn rfc3339_time_and_special_values_as_strings() {
    let f = fixture(ApiOptions::default());
    for (t, want) in [
        ("0", "NaN"),
        ("15", "+Inf"),
        ("1970-01-01T00:00:30Z", "-Inf"),
    ] {
        let (s, v) = get_json(&f, &format!("/api/v1/query?query=weird&time={t}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["data"]["result"][0]["value"][1], want, "{v}");
    }
}

#[tokio::test]
async fn range_query_matrix_with_duration_step() {
    let f = fixture(ApiOptions::default());
    let (s, v) = post_json(
        &f,
        "/api/v1/query_range",
        "query=up%7Bjob%3D%22a%22%7D&start=0&end=60&step=30s&unknown=1",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(
        v["data"]["result"][0]["values"],
        json!([[0, "1"], [30, "1"], [60, "1"]])
    );
}

#[tokio::test]
async fn range_query_errors_are_prometheus_shaped() {
    let f = fixture(ApiOptions::default());
    let cases = [
        (
            "query=up&start=0&end=100000&step=1",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "query=up&start=10&end=0&step=1",
            "invalid parameter \"end\": end timestamp must not be before start time",
        ),
        (
            "query=up&start=0&end=10&step=0",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "query=up&start=x&end=10&step=1",
            "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp",
        ),
        (
            "query=up&start=0&end=10&step=abc",
            "invalid parameter \"step\": cannot parse \"abc\" to a valid duration",
        ),
        (
            "query=up[1m]&start=0&end=10&step=1",
            "invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
        ),
    ];
    for (form, msg) in cases {
        let (s, v) = post_json(&f, "/api/v1/query_range", form).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{form}");
        assert_eq!(
            v,
            json!({"status": "error", "errorType": "bad_data", "error": msg})
        );
    }
    // Exactly 11,000 steps is still allowed.
    let (s, _) = post_json(
        &f,
        "/api/v1/query_range",
        "query=1&start=0&end=11000&step=1",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn bad_query_is_400_and_too_many_samples_422() {
    let f = fixture(ApiOptions::default());
    let (s, v) = get_json(&f, "/api/v1/query?query=sum(").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("invalid parameter \"query\": "))
    );

    let f = fixture(ApiOptions {
        max_samples: 1,
        ..ApiOptions::default()
    });
    let (s, v) = get_json(&f, "/api/v1/query?query=up%5B10m%5D&time=600").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errorType"], "execution");
}

#[tokio::test]
async fn wrong_method_is_405() {
    let f = fixture(ApiOptions::default());
    for (m, uri) in [
        (Method::DELETE, "/api/v1/query"),
        (Method::PUT, "/api/v1/query_range"),
        (Method::POST, "/api/v1/label/job/values"),
        (Method::POST, "/api/v1/status/buildinfo"),
        (Method::GET, "/api/v1/admin/tsdb/snapshot"),
    ] {
        let (s, _) = call(&f, m.clone(), uri, None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
    }
}

#[tokio::test]
async fn series_labels_and_values_with_matchers_and_limit() {
    let f = fixture(ApiOptions::default());
    let (s, v) = post_json(
        &f,
        "/api/v1/series",
        "match%5B%5D=up&match%5B%5D=weird&start=0&end=600",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["data"][2], json!({"__name__": "weird", "job": "a"}));

    let (s, v) = get_json(&f, "/api/v1/series").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "no match[] parameter provided");

    let (_, v) = post_json(&f, "/api/v1/labels", "start=0&end=600").await;
    assert_eq!(v["data"], json!(["__name__", "instance", "job"]));
    let (_, v) = get_json(&f, "/api/v1/labels?match[]=weird").await;
    assert_eq!(v["data"], json!(["__name__", "job"]));

    let (_, v) = get_json(
        &f,
        "/api/v1/label/__name__/values?start=0&end=600&limit=40000",
    )
    .await;
    assert_eq!(v["data"], json!(["up", "weird"]));
    let (_, v) = get_json(
        &f,
        "/api/v1/label/job/values?match[]=up%7Binstance%3D%22y%22%7D",
    )
    .await;
    assert_eq!(v["data"], json!(["b"]));
    let (_, v) = get_json(&f, "/api/v1/label/job/values?limit=1").await;
    assert_eq!(v["data"], json!(["a"]));
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));

    // Series outside the requested window are not reported.
    let (_, v) = get_json(&f, "/api/v1/label/__name__/values?start=1000&end=2000").await;
    assert_eq!(v["data"], json!([]));

    let (s, v) = get_json(&f, "/api/v1/labels?match[]=sum(up)").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn stub_free_metadata_shapes() {
    let f = fixture(ApiOptions::default());
    for (uri, data) in [
        ("/api/v1/metadata", json!({})),
        ("/api/v1/targets/metadata", json!([])),
        ("/api/v1/rules", json!({"groups": []})),
        ("/api/v1/alerts", json!({"alerts": []})),
        (
            "/api/v1/query_exemplars?query=test&start=1712345670000&end=1712345679000",
            json!([]),
        ),
        (
            "/api/v1/targets",
            json!({"activeTargets": [], "droppedTargets": [], "droppedTargetCounts": {}}),
        ),
    ] {
        let (s, v) = get_json(&f, uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        assert_eq!(v, json!({"status": "success", "data": data}), "{uri}");
    }
}

#[tokio::test]
async fn buildinfo_has_a_version_and_no_features() {
    let f = fixture(ApiOptions::default());
    let (s, v) = get_json(&f, "/api/v1/status/buildinfo").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["data"]["version"]
            .as_str()
            .is_some_and(|s| s.starts_with("3."))
    );
    assert!(v["data"].get("features").is_none());
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(v["data"][k].is_string(), "{k}");
    }
}

#[tokio::test]
async fn format_and_parse_query() {
    let f = fixture(ApiOptions::default());
    let (s, v) = get_json(
        &f,
        "/api/v1/format_query?query=sum(rate(up%5B5m%5D))by(job)",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], "sum by (job) (rate(up[5m]))");
    let (s, v) = post_json(&f, "/api/v1/parse_query", "query=up%7Bjob%3D%22a%22%7D").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["type"], "vectorSelector");
    assert_eq!(v["data"]["name"], "up");
    let (s, _) = get_json(&f, "/api/v1/format_query?query=sum(").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_endpoints_answer() {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert("query.timeout".to_string(), "2m".to_string());
    let f = fixture(ApiOptions {
        flags,
        ..ApiOptions::default()
    });
    let (_, v) = get_json(&f, "/api/v1/status/flags").await;
    assert_eq!(v["data"], json!({"query.timeout": "2m"}));
    let (_, v) = get_json(&f, "/api/v1/status/tsdb").await;
    assert_eq!(v["data"]["headStats"]["numSeries"], 3);
    assert_eq!(
        v["data"]["seriesCountByMetricName"][0],
        json!({"name": "up", "value": 2})
    );
    let (_, v) = get_json(&f, "/api/v1/status/runtimeinfo").await;
    assert_eq!(v["data"]["reloadConfigSuccess"], true);
    assert_eq!(v["data"]["storageRetention"], "15d");
    let (_, v) = get_json(&f, "/api/v1/status/walreplay").await;
    assert_eq!(v["data"]["current"], v["data"]["max"]);
    let (_, v) = get_json(&f, "/api/v1/status/config").await;
    assert!(v["data"]["yaml"].is_string());
}

#[tokio::test]
async fn federate_latest_samples_as_text() {
    let f = fixture(ApiOptions {
        // The fixture's samples are from 1970; look back far enough to reach them.
        lookback_delta: std::time::Duration::from_secs(100 * 365 * 86_400),
        ..ApiOptions::default()
    });
    let (s, body) = call(&f, Method::GET, "/federate?match[]=up", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        "# TYPE up untyped\nup{instance=\"x\",job=\"a\"} 1 600000\nup{instance=\"y\",job=\"b\"} 0 600000\n"
    );
}

#[tokio::test]
async fn admin_endpoints_need_the_flag_and_delete_series_hides_data() {
    let f = fixture(ApiOptions::default());
    let (s, v) = post_json(&f, "/api/v1/admin/tsdb/snapshot", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"], "admin APIs disabled");

    let f = fixture(ApiOptions {
        enable_admin_api: true,
        ..ApiOptions::default()
    });
    let (s, v) = post_json(&f, "/api/v1/admin/tsdb/snapshot", "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let name = v["data"]["name"].as_str().expect("snapshot name");
    let snap = f.api.storage.dir().join("snapshots").join(name);
    let blocks: Vec<_> = std::fs::read_dir(&snap).expect("snapshot dir").collect();
    assert_eq!(blocks.len(), 1, "the head written as one block");

    // delete_series hides [0, 300] s of up{job="a"} at once; Prometheus answers 204 with no body.
    let count = "/api/v1/query?query=count_over_time(up%5B10m%5D)&time=600";
    let (_, v) = get_json(&f, count).await;
    assert_eq!(v["data"]["result"][0]["value"][1], "40", "{v}");
    let (s, body) = call(
        &f,
        Method::POST,
        "/api/v1/admin/tsdb/delete_series",
        Some("match%5B%5D=up%7Bjob%3D%22a%22%7D&start=0&end=300"),
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::NO_CONTENT, ""));
    let (_, v) = get_json(&f, count).await;
    let result = v["data"]["result"].as_array().expect("result").clone();
    let by_job = |job: &str| {
        result
            .iter()
            .find(|r| r["metric"]["job"] == job)
            .map(|r| r["value"][1].clone())
    };
    assert_eq!(by_job("a"), Some("20".into()), "{v}");
    assert_eq!(by_job("b"), Some("40".into()), "{v}");
    let (_, v) = get_json(&f, "/api/v1/series?match%5B%5D=up&start=0&end=300").await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
    let (s, _) = call(
        &f,
        Method::POST,
        "/api/v1/admin/tsdb/clean_tombstones",
        Some(""),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = get_json(&f, count).await;
    assert_eq!(v["data"]["result"][0]["value"][1], "20", "{v}");
    let (s, v) = post_json(&f, "/api/v1/admin/tsdb/delete_series", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "no match[] parameter provided");
}

#[tokio::test]
async fn gzip_when_accepted() {
    let f = fixture(ApiOptions::default());
    let req = Request::builder()
        .uri("/api/v1/query_range?query=up&start=0&end=600&step=1")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .expect("request");
    let resp = router(f.api.clone()).oneshot(req).await.expect("response");
    assert_eq!(
        resp.headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    assert!(text.starts_with("{\"status\":\"success\""));
}

#[test]
fn secrets_are_masked_in_the_shown_config() {
    let yaml = "scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password: hunter2\n    authorization:\n      credentials_file: /x\n    bearer_token: abc\n";
    let masked = crate::mask_secrets(yaml);
    assert!(
        !masked.contains("hunter2") && !masked.contains("abc"),
        "{masked}"
    );
    assert!(masked.contains("      password: <secret>\n"));
    assert!(masked.contains("credentials_file: /x"));
    assert!(masked.contains("username: u"));
}

#[tokio::test]
async fn query_exemplars_selects_by_the_query_selectors() {
    use edgeprom_scrape::ExemplarStorage;
    use edgeprom_scrape::exemplars::Exemplar;
    let store = Arc::new(ExemplarStorage::new(10));
    {
        let mut w = store.writer();
        for (job, trace, v, ts) in [
            ("a", "t1", 0.5, 1_000),
            ("a", "t2", 1.5, 2_500),
            ("b", "t3", 7.0, 3_000),
        ] {
            let series = Labels::from_pairs([("__name__", "up"), ("job", job)]);
            let e = Exemplar {
                labels: Labels::from_pairs([("trace_id", trace)]),
                value: v,
                ts,
                has_ts: true,
            };
            w.add(&series, &e).expect("added");
        }
    }
    let mut f = fixture(ApiOptions::default());
    let storage = f.api.storage.clone();
    f.api = Arc::new(Api::new(storage, None, ApiOptions::default()).with_exemplar_storage(store));

    let (s, v) = get_json(&f, "/api/v1/query_exemplars?query=up%7Bjob%3D%22a%22%7D").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!([{
            "seriesLabels": {"__name__": "up", "job": "a"},
            "exemplars": [
                {"labels": {"trace_id": "t1"}, "value": "0.5", "timestamp": 1},
                {"labels": {"trace_id": "t2"}, "value": "1.5", "timestamp": 2.5},
            ],
        }])
    );
    // Selectors anywhere in the expression count; the range narrows the exemplars.
    let (_, v) = get_json(
        &f,
        "/api/v1/query_exemplars?query=sum(rate(up%5B5m%5D))&start=2&end=3",
    )
    .await;
    let series: Vec<&str> = v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["seriesLabels"]["job"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(series, ["a", "b"], "{v}");
    assert_eq!(v["data"][0]["exemplars"][0]["labels"]["trace_id"], "t2");
    // No selector at all: Prometheus answers null.
    let (s, v) = get_json(&f, "/api/v1/query_exemplars?query=1%2B1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"], Value::Null);
    let (s, v) = get_json(&f, "/api/v1/query_exemplars?query=up&start=5&end=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["error"],
        "end timestamp must not be before start timestamp"
    );
    let (s, _) = get_json(&f, "/api/v1/query_exemplars?query=sum(").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn post_write(
    f: &Fixture,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, HeaderMapOwned, String) {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/write")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_ENCODING, "snappy")
        .body(Body::from(body))
        .expect("request");
    let resp = router(f.api.clone()).oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

type HeaderMapOwned = axum::http::HeaderMap;

#[tokio::test]
async fn remote_write_receiver_is_off_unless_enabled() {
    use edgeprom_remote::{BatchSeries, Encoder, RemoteWriteMessage, WriteBatch, content_type};
    let batch = WriteBatch {
        series: vec![BatchSeries {
            labels: Labels::from_pairs([("__name__", "pushed"), ("site", "edge-1")]),
            samples: vec![edgeprom_model::Sample { t: 30_000, v: 42.0 }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let v2 = RemoteWriteMessage::V2;
    let body = Encoder::new().encode(&batch, v2).expect("encode").to_vec();

    let off = fixture(ApiOptions::default());
    let (s, _, text) = post_write(&off, content_type(v2), body.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        text,
        "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n"
    );

    let on = fixture(ApiOptions {
        enable_remote_write_receiver: true,
        ..ApiOptions::default()
    });
    let (s, h, text) = post_write(&on, content_type(v2), body).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(h["x-prometheus-remote-write-samples-written"], "1");
    let (s, v) = get_json(&on, "/api/v1/query?query=pushed&time=60").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "42");
    assert_eq!(v["data"]["result"][0]["metric"]["site"], "edge-1");

    let (s, h, text) = post_write(&on, "application/x-protobuf;proto=nope", vec![0]).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert_eq!(h[header::CONTENT_TYPE], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn received_exemplars_join_the_exemplar_ring() {
    use edgeprom_remote::{
        BatchExemplar, BatchSeries, Encoder, RemoteWriteMessage, WriteBatch, content_type,
    };
    let base = fixture(ApiOptions {
        enable_remote_write_receiver: true,
        ..ApiOptions::default()
    });
    let ring = Arc::new(edgeprom_scrape::ExemplarStorage::new(100));
    let api = Api::new(
        base.api.storage.clone(),
        None,
        ApiOptions {
            enable_remote_write_receiver: true,
            ..ApiOptions::default()
        },
    )
    .with_exemplar_storage(ring);
    let f = Fixture {
        _dir: base._dir,
        api: Arc::new(api),
    };
    let batch = WriteBatch {
        series: vec![BatchSeries {
            labels: Labels::from_pairs([("__name__", "pushed_total"), ("site", "edge-1")]),
            wire_labels: None,
            samples: vec![edgeprom_model::Sample { t: 30_000, v: 3.0 }],
            exemplars: vec![BatchExemplar {
                labels: Labels::from_pairs([("trace_id", "4bf92f35")]),
                value: 0.25,
                timestamp: 29_500,
            }],
            metadata: None,
        }],
        metadata: vec![],
    };
    let v2 = RemoteWriteMessage::V2;
    let body = Encoder::new().encode(&batch, v2).expect("encode").to_vec();
    let (s, h, text) = post_write(&f, content_type(v2), body).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(h["x-prometheus-remote-write-exemplars-written"], "1");
    let (s, v) = get_json(
        &f,
        "/api/v1/query_exemplars?query=pushed_total&start=0&end=60",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ex = &v["data"][0]["exemplars"][0];
    assert_eq!(ex["labels"]["trace_id"], "4bf92f35", "{v}");
    assert_eq!(ex["value"], "0.25", "{v}");
}

/// Regression (hostile API battery): `start=-9e15&end=9e15` made `end - start` overflow `i64`
/// in the points-per-series check, a panic that dropped the connection.
#[tokio::test]
async fn range_query_with_times_at_both_ends_of_i64_does_not_overflow() {
    let f = fixture(ApiOptions::default());
    let (s, v) = get_json(
        &f,
        "/api/v1/query_range?query=up&start=-9e15&end=9e15&step=1e12",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errorType"], "bad_data");
}

/// Regression (hostile API battery): ten thousand nested parentheses overflowed the stack of
/// the thread parsing the query and aborted the server; every endpoint that parses PromQL now
/// refuses them first.
#[tokio::test]
async fn deeply_nested_queries_are_bad_data_on_every_parsing_endpoint() {
    let f = fixture(ApiOptions::default());
    let deep = format!("{}up{}", "(".repeat(10_000), ")".repeat(10_000));
    let form = format!("query={deep}&match[]={deep}");
    for path in [
        "/api/v1/query",
        "/api/v1/query_range?start=0&end=60&step=15",
        "/api/v1/format_query",
        "/api/v1/parse_query",
        "/api/v1/query_exemplars",
        "/api/v1/series",
        "/api/v1/labels",
    ] {
        let (s, v) = post_json(&f, path, &form).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("--query.max-expression-depth")),
            "{path}: {v}"
        );
    }
}

/// Regression (hostile API battery): a label name that is not UTF-8 was answered with axum's
/// plain-text rejection instead of Prometheus's error JSON.
#[tokio::test]
async fn label_values_with_invalid_utf8_name_is_bad_data_json() {
    let f = fixture(ApiOptions::default());
    let (s, v) = get_json(&f, "/api/v1/label/%ff%fe/values").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
}

/// The standard fixture plus `n` series `many{id="<i>"}`, one sample each at 0 s, for reads
/// long enough to outlast a tiny timeout.
fn many_series_fixture(options: ApiOptions, n: usize) -> Fixture {
    let f = fixture(options);
    let mut app = f.api.storage.appender();
    for i in 0..n {
        let l = Labels::from_pairs([("__name__", "many"), ("id", &i.to_string())]);
        app.append(None, &l, 0, i as f64).expect("append");
    }
    app.commit().expect("commit");
    f
}

/// `match[]=many{id=~"…"}` repeated `n` times, each regex different so none is cached away,
/// form-encoded.
fn many_regex_matches(n: usize) -> String {
    (0..n)
        .map(|i| format!("match%5B%5D=many%7Bid%3D~%22.*{i}.*%7C.*x%22%7D"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn series_and_label_reads_stop_at_the_query_timeout() {
    let f = many_series_fixture(
        ApiOptions {
            timeout: std::time::Duration::from_millis(1),
            ..ApiOptions::default()
        },
        5_000,
    );
    let matches = many_regex_matches(200);
    for (path, extra) in [
        ("/api/v1/series", ""),
        ("/api/v1/labels", ""),
        ("/api/v1/labels", "&start=0&end=600"),
        ("/api/v1/label/id/values", ""),
        ("/api/v1/label/id/values", "&start=0&end=600"),
    ] {
        // Label values are GET only, as in Prometheus.
        let (s, v) = if path.contains("/values") {
            get_json(&f, &format!("{path}?{matches}{extra}")).await
        } else {
            post_json(&f, path, &format!("{matches}{extra}")).await
        };
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{path}{extra}: {v}");
        assert_eq!(v["status"], "error", "{path}{extra}");
        assert_eq!(v["errorType"], "timeout", "{path}{extra}");
        assert_eq!(v["error"], "query timed out in series selection");
    }
    // Federation answers in text, so does its timeout.
    let uri = format!("/federate?{matches}");
    let (s, body) = call(&f, Method::GET, &uri, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "query timed out in series selection\n");
}

#[tokio::test]
async fn series_reads_within_the_timeout_succeed_and_a_request_timeout_shortens_it() {
    let f = many_series_fixture(ApiOptions::default(), 5_000);
    let matches = many_regex_matches(200);
    let (s, v) = post_json(&f, "/api/v1/series", &matches).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Every id contains one of 0..199.
    assert_eq!(v["data"].as_array().map(Vec::len), Some(5_000));
    let (s, v) = get_json(&f, &format!("/api/v1/label/id/values?{matches}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(5_000));

    // The request's `timeout` can only shorten the server's, as for queries.
    let (s, v) = post_json(&f, "/api/v1/series", &format!("{matches}&timeout=0.001")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["errorType"], "timeout");
    let (s, v) = post_json(&f, "/api/v1/series", "match%5B%5D=up&timeout=1h").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn regexes_go_refuses_are_bad_data() {
    let f = fixture(ApiOptions::default());
    let want = "error parsing regexp: invalid repeat count: `{10000}`";
    let selector = "%7B__name__%3D~%22(a%7Cb)%7B10000%7D%22%7D";
    let (s, v) = get_json(&f, &format!("/api/v1/query?query={selector}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errorType"], "bad_data");
    assert_eq!(v["error"], format!("invalid parameter \"query\": {want}"));
    for path in ["/api/v1/series", "/api/v1/labels"] {
        let (s, v) = get_json(&f, &format!("{path}?match[]={selector}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["errorType"], "bad_data");
        assert_eq!(v["error"], format!("invalid parameter \"match[]\": {want}"));
    }
    let (s, v) = get_json(
        &f,
        "/api/v1/query?query=up%7Bjob%3D~%22(a%7Cb)%7B1000%7D%22%7D",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn queries_past_the_shared_sample_budget_are_execution_errors() {
    // `up` at 600 s loads the 21 samples of each series within the 5-minute lookback, 42 in
    // all; `up[10m]` loads 80.
    let budget = edgeprom_promql::SampleBudget::new(60);
    let f = fixture(ApiOptions {
        sample_budget: budget.clone(),
        ..ApiOptions::default()
    });
    // 2 series × 40 samples in the left-open 10-minute window: within --query.max-samples,
    // past the budget all queries share.
    let (s, v) = get_json(&f, "/api/v1/query?query=up%5B10m%5D&time=600").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errorType"], "execution");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("--query.max-samples-total")),
        "{v}"
    );
    assert_eq!(budget.in_use(), 0);
    let (s, v) = get_json(&f, "/api/v1/query?query=up&time=600").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(budget.in_use(), 0);
}
