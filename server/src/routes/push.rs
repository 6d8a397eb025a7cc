//! `POST /v1/sync/mutations`: a push, run through ferry-core's apply rules in one database
//! transaction. Requires a bearer token and an `Idempotency-Key` header.

use crate::auth::authenticate;
use crate::db::{now_ms, Push, PushOutcome};
use crate::errors::{describe_json_error, ApiError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use ferry_core::apply::DigestedPush;
use ferry_core::protocol::{limits, validate_id, PushRequest, PushResponse, ServerLimits};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

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
    check_stamps(body)?;
    Ok(req)
}

/// Just the stamps of a push body, as sent.
#[derive(Deserialize)]
struct Stamps<'a> {
    #[serde(borrow)]
    mutations: Vec<Stamp<'a>>,
}

#[derive(Deserialize)]
struct Stamp<'a> {
    #[serde(borrow)]
    hlc: Cow<'a, str>,
}

/// Whether `text` is a stamp in its one canonical form (PROTOCOL.md §1): 15 decimal digits,
/// `-`, 10 decimal digits, `-`, and a node of 1 to 128 printable ASCII characters without
/// spaces. Parsing alone is laxer (a `+` sign, an empty node), and a stamp is stored as it
/// was sent, so anything but the canonical form is refused rather than rewritten.
pub fn is_canonical_stamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    bytes.len() > 27
        && bytes.len() <= 27 + limits::MAX_ID_LEN
        && digits(0..15)
        && bytes[15] == b'-'
        && digits(16..26)
        && bytes[26] == b'-'
        && bytes[27..].iter().all(u8::is_ascii_graphic)
}

/// Checks every stamp of a body that already decoded as a push.
fn check_stamps(body: &[u8]) -> Result<(), ApiError> {
    let stamps: Stamps = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: describe_json_error(&e),
    })?;
    match stamps
        .mutations
        .iter()
        .position(|s| !is_canonical_stamp(&s.hlc))
    {
        None => Ok(()),
        Some(i) => Err(ApiError::BadRequest {
            code: "invalid_message",
            message: format!(
                "invalid `mutations[{i}].hlc`: must be 15 digits, `-`, 10 digits, `-` and a node of 1 to 128 printable ASCII characters without spaces"
            ),
        }),
    }
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
    let claims = authenticate(&state.auth, &headers, None).await?;
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
    // Critical pushes may use the tenant's whole share; others leave room for them.
    let share = crate::priority::requested_share(&headers)?;
    let _permit = state.limiter.acquire_share(&claims.tenant, share)?;
    let req = decode_push(&body)?;
    // Before anything is applied: an older client must not write its old shapes.
    state.data_versions.check(&headers, &claims.tenant, &req)?;
    let digest = body_digest(&req);
    let rules = state.rules.for_user(&claims);
    // Each mutation's digest, computed here rather than under the tenant's lock.
    let digested = DigestedPush::new(&req);
    let push = Push {
        tenant: &claims.tenant,
        user: &claims.user,
        idempotency_key: key,
        body_digest: &digest,
        req: &digested,
        rules: &rules,
    };
    match state.db.push(&push).await? {
        PushOutcome::Applied(mut resp) => {
            resp.epoch = state.db.epoch().to_owned();
            resp.server_time = now_ms();
            resp.limits = Some(ServerLimits::default());
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
        PushOutcome::ForeignClient { client_id } => {
            tracing::warn!(tenant = %claims.tenant, "push under a client id bound to another user");
            Err(ApiError::ForeignClient(client_id))
        }
        PushOutcome::OpReused { op_id } => Err(ApiError::Unprocessable {
            code: "op_id_reused",
            message: format!("op id `{op_id}` was already used with a different body"),
        }),
    }
}
