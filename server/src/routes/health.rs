//! `GET /livez` (200 while the process serves HTTP: restart it when this fails),
//! `GET /readyz` and its older name `GET /healthz` (200 after a database round trip within
//! [`READY_TIMEOUT`], 503 `unavailable` otherwise: route no traffic here meanwhile), and
//! `GET /metrics` (Prometheus text format).

use crate::errors::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

/// The longest a readiness check waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ok"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Unavailable)
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer in time");
            Err(ApiError::Unavailable)
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}
