use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

fn ui() -> Router {
    router(WebOptions {
        route_prefix: "/prom".into(),
        dashboards_dir: None,
    })
}

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let r = ui()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn pages_name_themselves_and_the_current_asset_version() {
    for page in PAGES {
        let (status, headers, body) = get(&format!("/{page}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(body.contains(&format!("data-page=\"{page}\"")), "{body}");
        assert!(body.contains(&format!("static/{}/js/app.js", assets::version())));
        // Relative URLs only, so the route prefix works.
        assert!(
            !body.contains("href=\"/") && !body.contains("src=\"/"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn root_redirects_to_the_graph_page_under_the_prefix() {
    let (status, headers, _) = get("/").await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers[header::LOCATION], "/prom/graph");
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_cached_as_immutable() {
    for (name, a) in assets::all() {
        let (status, headers, body) = get(&format!("/static/{}/{name}", assets::version())).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(headers[header::CONTENT_TYPE], a.content_type, "{name}");
        assert!(
            headers[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_eq!(body.len(), a.body.len(), "{name}");
    }
    // An older page's version still loads, but is not pinned.
    let (status, headers, _) = get("/static/0123/js/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(get("/static/x/js/nope.js").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_known_etag_answers_not_modified() {
    let path = format!("/static/{}/app.css", assets::version());
    let (_, headers, _) = get(&path).await;
    let etag = headers[header::ETAG].clone();
    let r = ui()
        .oneshot(
            Request::get(path)
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[test]
fn the_platform_dashboards_are_embedded_with_unique_ids() {
    let list = Dashboards::Embedded.load();
    // 18 Prometheus dashboards and the Loki one, plain JSON and ConfigMaps.
    assert_eq!(list.len(), 19);
    let mut ids: Vec<&str> = list.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 19);
    for d in list.iter() {
        assert!(d.json.is_ok(), "{}: {:?}", d.source, d.json);
    }
    let cm = list
        .iter()
        .find(|d| d.source == "k8s/grafana-dynamo-dashboard-configmap.yaml[dynamo-dashboard.json]")
        .expect("ConfigMap dashboard");
    assert_eq!(
        cm.id,
        "k8s-grafana-dynamo-dashboard-configmap-dynamo-dashboard"
    );
}

#[tokio::test]
async fn a_dashboards_dir_is_read_on_every_request_and_errors_are_listed() {
    let dir = std::env::temp_dir().join(format!("edgeprom-web-dash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("a.json"),
        r#"{"title": "A", "panels": [{"type": "stat"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("sub/bad.json"), "{").unwrap();
    std::fs::write(
        dir.join("cm.yaml"),
        "kind: ConfigMap\ndata:\n  b.json: |\n    {\"title\": \"B\"}\n  notes.txt: x\n",
    )
    .unwrap();
    let ui = router(WebOptions {
        route_prefix: "/".into(),
        dashboards_dir: Some(dir.clone()),
    });
    let body = |r: axum::response::Response| async move {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    let list = ui
        .clone()
        .oneshot(Request::get("/ui/dashboards").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&body(list).await).unwrap();
    let titles: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["A", "B", "sub/bad.json"]);
    assert_eq!(list[0]["panels"], 1);
    assert!(list[2]["error"].is_string());
    let b = ui
        .clone()
        .oneshot(
            Request::get("/ui/dashboards/cm-b")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(b.status(), StatusCode::OK);
    assert!(body(b).await.contains("\"B\""));
    std::fs::write(dir.join("c.json"), r#"{"title": "C"}"#).unwrap();
    let c = ui
        .oneshot(
            Request::get("/ui/dashboards/c")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(c.status(), StatusCode::OK);
    let _ = std::fs::remove_dir_all(dir);
}
