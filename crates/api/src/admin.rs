//! The TSDB admin endpoints, answered only with `--web.enable-admin-api`.
//!
//! `snapshot` hard-links the blocks and writes the head as one more block. `delete_series` records
//! tombstones that hide the data from every read at once; `clean_tombstones` rewrites the blocks
//! without it. Both answer 204 No Content on success, as Prometheus does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use crate::response::ErrorType;
use crate::{Api, ApiError, ApiResult, Params, Success};

fn enabled(api: &Api) -> Result<(), ApiError> {
    if api.options.enable_admin_api {
        Ok(())
    } else {
        Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"))
    }
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`: `match[]` (repeated), `start` and `end` (default:
/// all time).
pub(crate) async fn delete_series(
    State(api): State<Arc<Api>>,
    p: Params,
) -> Result<StatusCode, ApiError> {
    enabled(&api)?;
    if p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let sets = crate::series::match_sets(&api, &p)?;
    let start = p.time("start", crate::params::MIN_TIME)?;
    let end = p.time("end", crate::params::MAX_TIME)?;
    let storage = api.storage.clone();
    tokio::task::spawn_blocking(move || storage.delete_series(&sets, start, end))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("delete series: {e}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`.
pub(crate) async fn clean_tombstones(State(api): State<Arc<Api>>) -> Result<StatusCode, ApiError> {
    enabled(&api)?;
    let storage = api.storage.clone();
    tokio::task::spawn_blocking(move || storage.clean_tombstones())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("clean tombstones: {e}")))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /api/v1/admin/tsdb/snapshot`: a snapshot under `<data>/snapshots/<name>`.
pub(crate) async fn snapshot(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    enabled(&api)?;
    let skip_head = match p.get("skip_head") {
        None => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_data(format!(
                "unable to parse boolean 'skip_head' argument: invalid syntax: {v:?}"
            ))
        })?,
    };
    let name = format!(
        "{}-{:016x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        fastrand::u64(..)
    );
    let storage = api.storage.clone();
    let dir = storage.dir().join("snapshots").join(&name);
    tokio::task::spawn_blocking(move || storage.snapshot(&dir, skip_head))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("create snapshot: {e}")))?;
    Ok(Success::json(&serde_json::json!({ "name": name })))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
