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
