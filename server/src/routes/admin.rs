//! `POST /v1/demo/token` (demo mode only: a token for tenant `demo`) and
//! `POST /v1/admin/compact` (a tenant admin drops tombstones up to a cursor).

use crate::auth::authenticate;
use crate::errors::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

/// The tenant every demo user signs in to.
pub const DEMO_TENANT: &str = "demo";
/// How long a demo token is valid.
pub const DEMO_TTL_SECS: u64 = 24 * 3600;

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub user: String,
    /// Roles the token carries: demo tokens may carry [`DEMO_ROLES`] only (the sample app's
    /// manager, who reads every expense claim), never `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The roles a demo token may ask for.
pub const DEMO_ROLES: [&str; 1] = ["manager"];

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
    pub tenant: String,
    pub user: String,
}

/// A JSON body axum could not accept, described without its values.
fn json_error(e: JsonRejection) -> ApiError {
    let message = match &e {
        JsonRejection::JsonDataError(_) => {
            "malformed message: a value has the wrong type or format, or a field is missing"
        }
        JsonRejection::JsonSyntaxError(_) => "malformed message: the body is not valid JSON",
        JsonRejection::MissingJsonContentType(_) => {
            "malformed message: the Content-Type must be application/json"
        }
        _ => "malformed message: the body could not be read",
    };
    ApiError::BadRequest {
        code: "malformed_json",
        message: message.into(),
    }
}

pub async fn demo_token(
    State(state): State<AppState>,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    if !state.demo {
        return Err(ApiError::NotFound("no such route".into()));
    }
    let Json(req) = body.map_err(json_error)?;
    if let Some(role) = req.roles.iter().find(|r| !DEMO_ROLES.contains(&r.as_str())) {
        return Err(ApiError::bad_request(format!(
            "a demo token may not carry the role `{role}` (allowed: {})",
            DEMO_ROLES.join(", ")
        )));
    }
    let roles: Vec<&str> = req.roles.iter().map(String::as_str).collect();
    let token = state
        .signer
        .issue_with_roles(DEMO_TENANT, &req.user, DEMO_TTL_SECS, &roles)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::info!(tenant = DEMO_TENANT, "demo token issued");
    Ok(Json(TokenResponse {
        token,
        tenant: DEMO_TENANT.into(),
        user: req.user,
    }))
}

#[derive(Debug, Deserialize)]
pub struct CompactRequest {
    /// Tombstones logged at or before this cursor are removed.
    pub before_cursor: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CompactResponse {
    pub removed: u64,
    pub horizon: u64,
}

pub async fn compact(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CompactRequest>, JsonRejection>,
) -> Result<Json<CompactResponse>, ApiError> {
    let claims = authenticate(&state.auth, &headers, None).await?;
    if !claims.is_admin() {
        return Err(ApiError::Forbidden(
            "compaction needs a token with role `admin`".into(),
        ));
    }
    let Json(req) = body.map_err(json_error)?;
    let report = state.db.compact(&claims.tenant, req.before_cursor).await?;
    tracing::info!(tenant = %claims.tenant, removed = report.removed, horizon = report.horizon, "compacted");
    Ok(Json(CompactResponse {
        removed: report.removed,
        horizon: report.horizon,
    }))
}
