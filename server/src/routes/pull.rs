//! `GET /v1/sync/changes?cursor=C&limit=N[&collections=a,b]`: the newest state of every
//! record changed after the cursor (of the named collections only, when named), oldest
//! change first, one page at a time; 410 when the cursor is older than the
//! tenant's compaction horizon. Each page shows only what the user may read
//! ([`crate::permissions_filter`]). A conditional pull (`If-None-Match` naming the server's
//! epoch and the request's cursor) is answered `304` when the tenant's head is that cursor
//! and the device's view of the permissions is still current.

use crate::auth::authenticate;
use crate::db::now_ms;
use crate::errors::ApiError;
use crate::permissions_filter::View;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::apply::PullError;
use ferry_core::conditional::{parse_pull_etag, pull_etag};
use ferry_core::protocol::{limits, parse_pull_collections, ServerLimits};
use serde::Deserialize;

/// The page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 500;

/// The query string, as text: numbers are parsed here so that a cursor beyond 2^53 − 1 (or
/// beyond 64 bits) gets the documented `invalid_message`, and no value is ever echoed.
#[derive(Debug, Deserialize)]
pub struct PullQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
    /// The view fingerprint the device's records were pulled under (partial sync).
    pub view: Option<String>,
    /// Only these collections, comma-separated (a first sync's critical-first pass).
    pub collections: Option<String>,
}

/// A non-negative decimal number; `Err(true)` when it is all digits but too large.
fn parse_number(text: &str) -> Result<u64, bool> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(false);
    }
    text.parse::<u64>().map_err(|_| true)
}

/// The cursor of a query string: 0 when absent.
pub fn parse_cursor(text: Option<&str>) -> Result<u64, ApiError> {
    let Some(text) = text else { return Ok(0) };
    match parse_number(text) {
        Ok(n) if n <= limits::MAX_SAFE_INTEGER => Ok(n),
        Ok(_) | Err(true) => Err(ApiError::BadRequest {
            code: "invalid_message",
            message: "`cursor` is larger than 2^53 - 1".into(),
        }),
        Err(false) => Err(ApiError::bad_request(
            "`cursor` must be a non-negative integer",
        )),
    }
}

fn bad_query() -> ApiError {
    ApiError::bad_request(
        "the query string is malformed: `cursor` and `limit` are non-negative integers",
    )
}

/// The validator of a conditional pull, when it names this server's history and exactly
/// the request's cursor (anything else is answered with a full page).
fn validator<'h>(headers: &'h HeaderMap, epoch: &str, cursor: u64) -> Option<&'h HeaderValue> {
    let value = headers.get(header::IF_NONE_MATCH)?;
    let (named_epoch, named_cursor) = parse_pull_etag(value.to_str().ok()?)?;
    (named_epoch == epoch && named_cursor == cursor).then_some(value)
}

/// The `ETag` of an answer whose page ends at `cursor`.
fn etag(epoch: &str, cursor: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&pull_etag(epoch, cursor)?).ok()
}

pub async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let claims = authenticate(&state.auth, &headers, None).await?;
    let Query(q) = query.map_err(|_| bad_query())?;
    let cursor = parse_cursor(q.cursor.as_deref())?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        // A limit beyond the largest page is clamped to it, as documented.
        Some(text) => match parse_number(text) {
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
            Err(true) => u32::MAX,
            Err(false) => {
                return Err(ApiError::bad_request(
                    "`limit` must be a non-negative integer",
                ))
            }
        },
    }
    .clamp(1, limits::MAX_PULL_LIMIT);
    let collections = match q.collections.as_deref() {
        None => Vec::new(),
        Some(text) => parse_pull_collections(text)?,
    };
    let _permit = state.limiter.acquire(&claims.tenant)?;
    let view = View::new(&state.rules, &claims);
    let fingerprint = view.fingerprint();
    // A device that pulled under other roles or read grants may hold records this user may
    // no longer read: it starts over from 0, which drops them (partial sync). Checked before
    // the conditional answer, so a 304 never hides a permission change.
    if cursor != 0 && q.view.as_deref().is_some_and(|sent| sent != fingerprint) {
        return Err(ApiError::PermissionsChanged);
    }
    let epoch = state.db.epoch();
    if let Some(tag) = validator(&headers, epoch, cursor) {
        if state.db.head_is(&claims.tenant, cursor).await? {
            tracing::debug!(tenant = %claims.tenant, cursor, "pull: not modified");
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag.clone())]).into_response());
        }
    }
    match state
        .db
        .pull(&claims.tenant, cursor, limit, &view, &collections)
        .await?
    {
        Ok(mut page) => {
            page.epoch = epoch.to_owned();
            page.server_time = now_ms();
            page.limits = Some(ServerLimits::default());
            page.view = fingerprint;
            tracing::debug!(tenant = %claims.tenant, changes = page.changes.len(), cursor = page.cursor, "pull");
            let tag = etag(epoch, page.cursor);
            let mut response = Json(page).into_response();
            if let Some(tag) = tag {
                response.headers_mut().insert(header::ETAG, tag);
            }
            Ok(response)
        }
        Err(PullError::CursorExpired { horizon }) => {
            Err(ApiError::CursorExpired { cursor, horizon })
        }
    }
}
