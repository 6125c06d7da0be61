//! The TSDB admin endpoints, answered only with `--web.enable-admin-api`.
//!
//! `snapshot` hard-links the blocks and writes the head as one more block. `delete_series` records
//! tombstones that hide the data from every read at once; `clean_tombstones` rewrites the blocks
//! without it. Both answer 204 No Content on success, as Prometheus does.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use edgeprom_storage::Storage;
use edgeprom_storage::index::{MatchType, Matcher};

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
    let dir_name = name.clone();
    tokio::task::spawn_blocking(move || write_snapshot(&storage, &dir_name, skip_head))
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

fn write_snapshot(storage: &Storage, name: &str, skip_head: bool) -> Result<(), String> {
    let dir = storage.dir().join("snapshots").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut blocks_end = i64::MIN;
    for (id, _, max_time, _) in storage.block_list() {
        blocks_end = blocks_end.max(max_time);
        // Hard links: blocks are immutable, so the snapshot costs no space until they are deleted.
        link_tree(&storage.dir().join(&id), &dir.join(&id)).map_err(|e| format!("{id}: {e}"))?;
    }
    if skip_head {
        return Ok(());
    }
    let Some((_, newest)) = storage.time_range() else {
        return Ok(());
    };
    let mint = if blocks_end == i64::MIN {
        storage.time_range().map_or(0, |r| r.0)
    } else {
        blocks_end
    };
    if newest < mint {
        return Ok(());
    }
    let all = Matcher::new(MatchType::Regex, "__name__", ".+").map_err(|e| e.to_string())?;
    let series = storage
        .select(&[all], mint, newest)
        .into_iter()
        .map(|s| {
            let samples: Vec<(i64, f64)> = s.samples().filter(|&(t, _)| t >= mint).collect();
            (s.labels, samples)
        })
        .filter(|(_, samples)| !samples.is_empty())
        .collect::<Vec<_>>();
    if series.is_empty() {
        return Ok(());
    }
    edgeprom_storage::block::write_block(&dir, series.into_iter(), mint, newest + 1, 1, Vec::new())
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else {
            std::fs::hard_link(entry.path(), target)?;
        }
    }
    Ok(())
}
