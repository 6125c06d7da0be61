//! `/api/v1/parse_query`: the query's syntax tree as JSON, in the shape of Prometheus's.

use std::sync::Arc;

use axum::extract::State;

use crate::{Api, ApiError, ApiResult, Params, Success};

/// `GET|POST /api/v1/parse_query`.
pub(crate) async fn handler(State(api): State<Arc<Api>>, p: Params) -> ApiResult {
    let query = p.get("query").unwrap_or("");
    let expr = crate::parse_expr(&api, query).map_err(|e| ApiError::bad_param("query", e))?;
    let tree = serde_json::to_value(&expr).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Success::json(&tree))
}
