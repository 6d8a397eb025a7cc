//! `POST /v1/sync/mutations`: a push, run through ferry-core's apply rules in one database
//! transaction. Requires a bearer token and an `Idempotency-Key` header.

use crate::auth::authenticate;
use crate::db::PushOutcome;
use crate::errors::{describe_json_error, ApiError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use ferry_core::protocol::{limits, validate_id, PushRequest, PushResponse};
use sha2::{Digest, Sha256};

/// The header naming a batch; every retry of the batch sends the same key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body digest an idempotency key is bound to: SHA-256 of the canonical re-encoding, so
/// whitespace or key order on the wire do not matter.
pub fn body_digest(req: &PushRequest) -> String {
    let canonical = serde_json::to_vec(req).unwrap_or_default();
    Sha256::digest(canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decodes and validates a push body; a decoding fault is described without the body's
/// values ([`describe_json_error`]).
pub fn decode_push(body: &[u8]) -> Result<PushRequest, ApiError> {
    if body.len() > limits::MAX_PUSH_BYTES {
        return Err(too_large());
    }
    let req: PushRequest = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: describe_json_error(&e),
    })?;
    req.validate()?;
    Ok(req)
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "the push body exceeds the limit of {} bytes",
        limits::MAX_PUSH_BYTES
    ))
}

pub async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PushResponse>, ApiError> {
    let claims = authenticate(&state.signer, &headers, None)?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or(ApiError::BadRequest {
            code: "missing_idempotency_key",
            message: "the Idempotency-Key header is required".into(),
        })?
        .to_str()
        .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be printable ASCII"))?;
    validate_id("Idempotency-Key", key).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_request(format!("could not read the body: {rejection}")),
    })?;
    let _permit = state.limiter.acquire(&claims.tenant)?;
    let req = decode_push(&body)?;
    let digest = body_digest(&req);
    match state
        .db
        .push(&claims.tenant, key, &digest, &req, &state.rules)
        .await?
    {
        PushOutcome::Applied(resp) => {
            state.metrics.record_push(&resp);
            tracing::info!(
                tenant = %claims.tenant,
                mutations = req.mutations.len(),
                accepted = resp.accepted.len(),
                conflicts = resp.conflicts.len(),
                rejected = resp.rejected.len(),
                cursor = resp.cursor,
                "push"
            );
            Ok(Json(resp))
        }
        PushOutcome::KeyReused => Err(ApiError::Unprocessable {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was already used with a different body".into(),
        }),
        PushOutcome::OpReused { op_id } => Err(ApiError::Unprocessable {
            code: "op_id_reused",
            message: format!("op id `{op_id}` was already used with a different body"),
        }),
    }
}
