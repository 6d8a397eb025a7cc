//! The HTTP error type: every non-2xx answer is JSON `{"error":{"code","message"}}` with the
//! status the protocol names, and 429 carries `Retry-After`.
//!
//! Internal failures are logged with their detail and answered with a generic message, so no
//! SQL, file path or payload ever reaches a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::protocol::{ErrorBody, WireError};

/// Why a request failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a protocol rule.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: the bearer token is missing, invalid or expired; the code says which.
    #[error("{0}")]
    Unauthorized(crate::jwt::AuthError),
    /// 403: the token is valid but does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 403 `foreign_client`: a client id of the push is bound to another user of the tenant.
    #[error("client id `{0}` belongs to another user of this tenant")]
    ForeignClient(String),
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 410: the pull cursor is older than the compaction horizon.
    #[error(
        "cursor {cursor} is older than the compaction horizon {horizon}: pull again from cursor 0"
    )]
    CursorExpired { cursor: u64, horizon: u64 },
    /// 410 `permissions_changed`: the user's roles or the server's read grants changed since
    /// this device last pulled, so what it holds may include records the user may no longer
    /// read (partial sync).
    #[error("what you may read changed since this device last pulled: pull again from cursor 0")]
    PermissionsChanged,
    /// 409 `upgrade_required`: the client's data version is older than the server accepts
    /// (see `data_version.rs`); nothing of the push was applied.
    #[error("this client writes data version {sent}, but the server accepts only version {required} or newer: update the app")]
    UpgradeRequired { sent: u32, required: u32 },
    /// 413: the body is larger than the protocol allows.
    #[error("{0}")]
    TooLarge(String),
    /// 422: well-formed but refused (op id or idempotency key reused with another body).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 429: too many requests for this tenant; retry after the given seconds.
    #[error("too many requests for this tenant; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503: the database is not reachable; `Retry-After` says when to try again.
    #[error("the service is unavailable; retry after {UNAVAILABLE_RETRY_AFTER_SECS} s")]
    Unavailable,
    /// 500: a bug or an unexpected storage failure. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ForeignClient(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::CursorExpired { .. } | ApiError::PermissionsChanged => StatusCode::GONE,
            ApiError::UpgradeRequired { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::Unauthorized(e) => e.code(),
            ApiError::Forbidden(_) => "forbidden",
            ApiError::ForeignClient(_) => "foreign_client",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::CursorExpired { .. } => "cursor_expired",
            ApiError::PermissionsChanged => "permissions_changed",
            ApiError::UpgradeRequired { .. } => "upgrade_required",
            ApiError::TooLarge(_) => "too_large",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A 400 with code `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "invalid_request",
            message: message.into(),
        }
    }

    /// A 500 whose detail is only logged.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
            _ => ApiError::BadRequest {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_outage() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::Unavailable
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

/// The `Retry-After` of a 503: long enough for a restarting database, short enough that
/// clients come back soon after it does.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// A message for a body serde could not decode, without any of the body's values: serde's
/// own messages quote the offending value (`invalid type: string "…"`), and PROTOCOL.md §7
/// promises that no payload is ever echoed. Only the position and the kind of fault remain,
/// plus serde's `missing field` message, which names a field of the protocol, not the body.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let what = match e.classify() {
        Category::Io => "the body could not be read",
        Category::Syntax => "the body is not valid JSON",
        Category::Eof => "the body ends too early",
        Category::Data if text.starts_with("missing field") => {
            return format!(
                "malformed message: {}",
                text.split(" at line").next().unwrap_or("missing field")
            );
        }
        Category::Data => "a value has the wrong type or format",
    };
    format!(
        "malformed message: {what} (line {}, column {})",
        e.line(),
        e.column()
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let status = self.status();
        let body = ErrorBody::new(self.code(), self.to_string());
        let mut response = (status, Json(body)).into_response();
        let retry_after = match self {
            ApiError::TooManyRequests { retry_after_secs } => Some(retry_after_secs.max(1)),
            ApiError::Unavailable => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The JSON 405 for known routes with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
