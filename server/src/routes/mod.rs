//! The HTTP routes and the layers around them: metrics and logging, compression (gzip,
//! brotli), permissive CORS for development, the body limit, JSON 404/405, and the static
//! files of the sample app.

pub mod admin;
pub mod events;
pub mod health;
pub mod pull;
pub mod push;

use crate::errors;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::{middleware, Router};
use ferry_core::protocol::limits;
use std::path::Path;
use tower_http::compression::CompressionLayer;
use tower_http::cors::CorsLayer;
use tower_http::services::{ServeDir, ServeFile};

/// The whole application.
pub fn router(state: AppState, static_dir: Option<&Path>) -> Router {
    let api = Router::new()
        .route("/v1/sync/mutations", post(push::push))
        .route("/v1/sync/changes", get(pull::pull))
        .route("/v1/sync/events", get(events::events))
        .route("/v1/demo/token", post(admin::demo_token))
        .route("/v1/admin/compact", post(admin::compact))
        .route("/v1/{*rest}", any(errors::not_found))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/healthz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .method_not_allowed_fallback(errors::method_not_allowed);
    let app = match static_dir {
        Some(dir) => {
            let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            api.fallback_service(files)
        }
        None => api.fallback(errors::not_found),
    };
    app.layer(DefaultBodyLimit::max(limits::MAX_PUSH_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(CompressionLayer::new())
        .layer(CorsLayer::permissive())
        .with_state(state)
}
