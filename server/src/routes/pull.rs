//! `GET /v1/sync/changes?cursor=C&limit=N`: the newest state of every record changed after
//! the cursor, oldest change first, one page at a time; 410 when the cursor is older than the
//! tenant's compaction horizon.

use crate::auth::authenticate;
use crate::errors::ApiError;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use ferry_core::protocol::{limits, PullResponse};
use ferry_core::server::PullError;
use serde::Deserialize;

/// The page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 500;

#[derive(Debug, Deserialize)]
pub struct PullQuery {
    #[serde(default)]
    pub cursor: u64,
    pub limit: Option<u32>,
}

pub async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Json<PullResponse>, ApiError> {
    let claims = authenticate(&state.signer, &headers, None)?;
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))?;
    if q.cursor > limits::MAX_SAFE_INTEGER {
        return Err(ApiError::bad_request("`cursor` is larger than 2^53 - 1"));
    }
    let limit = q
        .limit
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, limits::MAX_PULL_LIMIT);
    let _permit = state.limiter.acquire(&claims.tenant)?;
    match state.db.pull(&claims.tenant, q.cursor, limit).await? {
        Ok(page) => {
            tracing::debug!(tenant = %claims.tenant, changes = page.changes.len(), cursor = page.cursor, "pull");
            Ok(Json(page))
        }
        Err(PullError::CursorExpired { horizon }) => Err(ApiError::CursorExpired {
            cursor: q.cursor,
            horizon,
        }),
    }
}
