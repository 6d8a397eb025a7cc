//! Wire protocol v1: the JSON messages between a Ferry client and a sync server.
//!
//! PROTOCOL.md is the normative text; these types are its executable form. Decoding is the
//! only way in from the wire, and it never panics: every malformed or hostile message ends
//! in a [`WireError`] that says what was wrong.

use crate::hlc::Hlc;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A record's fields: a JSON object. `serde_json::Map` is ordered, so encodings are stable.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// Limits every decoder enforces, so hostile input costs bounded memory and time.
pub mod limits {
    /// Longest collection name, record id, op id, client id or error code.
    pub const MAX_ID_LEN: usize = 128;
    /// Most mutations in one push.
    pub const MAX_MUTATIONS_PER_PUSH: usize = 500;
    /// Most fields in one patch or record.
    pub const MAX_FIELDS: usize = 1_000;
    /// Largest encoded record or patch, in bytes.
    pub const MAX_RECORD_BYTES: usize = 256 * 1024;
    /// Largest push body, in bytes (the server answers 413 above it).
    pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;
    /// Largest page a pull may ask for.
    pub const MAX_PULL_LIMIT: u32 = 1_000;
    /// Most collections one pull may name (`collections=`, PROTOCOL.md §4).
    pub const MAX_PULL_COLLECTIONS: usize = 32;
    /// Versions, sequence numbers and cursors stay exact as JavaScript numbers.
    pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
    /// How far ahead of the server's clock a stamp's wall time may be, in milliseconds.
    /// The server refuses or clamps stamps beyond it; clients do not adopt remote stamps
    /// beyond it of their own calibrated clock (PROTOCOL.md §1, "Clock bound").
    pub const MAX_CLOCK_DRIFT_MS: u64 = 60_000;
    /// Longest history identity (`epoch`), in bytes.
    pub const MAX_EPOCH_LEN: usize = 64;
}

/// What a server accepts, advertised in its answers so a client sizes its batches to it.
/// A client that has not heard them yet uses the defaults of [`limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLimits {
    /// Largest push body in bytes.
    pub max_push_bytes: u64,
    /// Most mutations in one push.
    pub max_push_mutations: u64,
    /// Largest stored record (fields encoded as JSON) in bytes.
    pub max_record_bytes: u64,
    /// The clock bound: how far ahead of the server's clock a stamp may be, in ms.
    pub max_clock_drift_ms: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_push_bytes: limits::MAX_PUSH_BYTES as u64,
            max_push_mutations: limits::MAX_MUTATIONS_PER_PUSH as u64,
            max_record_bytes: limits::MAX_RECORD_BYTES as u64,
            max_clock_drift_ms: limits::MAX_CLOCK_DRIFT_MS,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The server's view of one record. Versions are assigned by the server only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub collection: String,
    pub id: String,
    /// Monotonic per record; 1 after the first write.
    pub version: u64,
    #[serde(default)]
    pub fields: Fields,
    /// A tombstone: the record was deleted at `version`.
    #[serde(default)]
    pub deleted: bool,
    /// The clock of the write that produced this version.
    pub hlc: Hlc,
}

/// What a mutation does to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Creates the record (or revives a tombstone at `base_version`) with `patch` as fields.
    Create,
    /// Sets each field of `patch`; a `null` value removes that field.
    Update,
    /// Turns the record into a tombstone.
    Delete,
}

/// One local write, as pushed to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    /// Stable id: the server applies each op id at most once.
    pub op_id: String,
    /// The writing client; ops of one client apply in `seq` order.
    pub client_id: String,
    /// Strictly increasing per `client_id` (gaps allowed).
    pub seq: u64,
    pub collection: String,
    pub record_id: String,
    pub op: OpKind,
    /// The server version the write was made against; 0 for a record never seen.
    pub base_version: u64,
    #[serde(default)]
    pub patch: Fields,
    pub hlc: Hlc,
}

/// `POST /v1/sync/mutations` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The sending client (for logs); each mutation names its own writer.
    pub client_id: String,
    pub mutations: Vec<Mutation>,
}

/// One applied mutation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub op_id: String,
    /// The record's version after this mutation.
    pub version: u64,
}

/// A mutation whose base version was stale; carries the authoritative record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub op_id: String,
    pub server: Record,
}

/// A mutation the server refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub op_id: String,
    pub code: String,
    pub message: String,
    /// `false`: refused for good, the client dead-letters it. `true`: send it again later.
    pub retryable: bool,
}

/// `POST /v1/sync/mutations` response (200).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct PushResponse {
    #[serde(default)]
    pub accepted: Vec<Accepted>,
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    /// The tenant's newest cursor after this push (a hint; pulls still page from their own).
    pub cursor: u64,
    /// The identity of the server's history (PROTOCOL.md §4, "Epoch"); empty from a server
    /// that predates it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The server's clock when it answered, ms since the Unix epoch (0: not sent). Clients
    /// calibrate their hybrid logical clock with it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub server_time: u64,
    /// What the server accepts; absent from a server that predates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ServerLimits>,
}

/// `GET /v1/sync/changes` response (200).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct PullResponse {
    /// The newest state of each record changed after the request's cursor, oldest change first.
    pub changes: Vec<Record>,
    /// Pass this as the next request's cursor.
    pub cursor: u64,
    pub has_more: bool,
    /// How many changed records remain after this page (an estimate for progress bars).
    #[serde(default)]
    pub remaining: u64,
    /// The tenant's newest cursor when the page was read. A client whose stored cursor is
    /// beyond it talks to a server that lost history (PROTOCOL.md §4, "Epoch").
    #[serde(default)]
    pub head: u64,
    /// The identity of the server's history; see [`PushResponse::epoch`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The server's clock when it answered; see [`PushResponse::server_time`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub server_time: u64,
    /// What the server accepts; see [`PushResponse::limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ServerLimits>,
    /// Records the pulling user could read before but may not read now (partial sync,
    /// PROTOCOL.md §8): the client drops its copy. Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<Revoked>,
    /// The fingerprint of what the pulling user may read (roles and read grants; partial
    /// sync). The client sends it back with its next pulls (`view=`); a server whose
    /// fingerprint for the user differs answers `410 permissions_changed`. Absent: the
    /// server filters nothing by user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub view: String,
}

/// A record taken out of the pulling user's view: no fields, only which record and the log
/// position of the change that took it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub collection: String,
    pub id: String,
    pub version: u64,
}

/// The JSON body of every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Why a wire message could not be accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Not JSON, truncated, or the wrong shape/types.
    Malformed { message: String },
    /// Well-formed JSON that breaks a protocol rule.
    Invalid { field: String, reason: String },
    /// Larger than a protocol limit.
    TooLarge { what: String, limit: usize },
}

impl WireError {
    /// The stable machine-readable code, as used in [`ErrorBody`].
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Malformed { .. } => "malformed_json",
            WireError::Invalid { .. } => "invalid_message",
            WireError::TooLarge { .. } => "too_large",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Malformed { message } => write!(f, "malformed message: {message}"),
            WireError::Invalid { field, reason } => write!(f, "invalid `{field}`: {reason}"),
            WireError::TooLarge { what, limit } => write!(f, "{what} exceeds the limit of {limit}"),
        }
    }
}

impl std::error::Error for WireError {}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> WireError {
    WireError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    limit: usize,
    what: &str,
) -> Result<T, WireError> {
    if bytes.len() > limit {
        return Err(WireError::TooLarge {
            what: what.to_owned(),
            limit,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| WireError::Malformed {
        message: e.to_string(),
    })
}

/// Checks an identifier: non-empty, bounded, printable ASCII without whitespace.
pub fn validate_id(field: &str, value: &str) -> Result<(), WireError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > limits::MAX_ID_LEN {
        return Err(invalid(
            field,
            format!("longer than {} bytes", limits::MAX_ID_LEN),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            "may hold only printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// Checks a collection name: `[a-z0-9_-]`, starting with a letter.
pub fn validate_collection(field: &str, value: &str) -> Result<(), WireError> {
    validate_id(field, value)?;
    let ok = value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(invalid(
            field,
            "must be lowercase letters, digits, `_` or `-`, starting with a letter",
        ));
    }
    Ok(())
}

/// The `collections=` of a pull (PROTOCOL.md §4): comma-separated collection names, at
/// most [`limits::MAX_PULL_COLLECTIONS`], returned sorted without repeats. Empty names and
/// an empty list are refused: a pull of every collection leaves the parameter out.
pub fn parse_pull_collections(text: &str) -> Result<Vec<String>, WireError> {
    let mut names = Vec::new();
    for name in text.split(',') {
        if name.is_empty() {
            return Err(invalid(
                "collections",
                "is a comma-separated list of collection names, without empty names",
            ));
        }
        validate_collection("collections", name)?;
        names.push(name.to_owned());
        if names.len() > limits::MAX_PULL_COLLECTIONS {
            return Err(invalid(
                "collections",
                format!("names at most {} collections", limits::MAX_PULL_COLLECTIONS),
            ));
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The `&collections=…` part of a pull's query string (nothing when none are named). The
/// names are valid collection names (`[a-z0-9_-]`), which need no percent-encoding.
pub fn pull_collections_param(collections: &[String]) -> String {
    if collections.is_empty() {
        String::new()
    } else {
        format!("&collections={}", collections.join(","))
    }
}

fn validate_number(field: &str, value: u64) -> Result<(), WireError> {
    if value > limits::MAX_SAFE_INTEGER {
        return Err(invalid(field, "is larger than 2^53 - 1"));
    }
    Ok(())
}

/// Checks a field map against the size limits.
pub fn validate_fields(field: &str, fields: &Fields) -> Result<(), WireError> {
    if fields.len() > limits::MAX_FIELDS {
        return Err(WireError::TooLarge {
            what: format!("`{field}` field count"),
            limit: limits::MAX_FIELDS,
        });
    }
    let size = serde_json::to_vec(fields)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > limits::MAX_RECORD_BYTES {
        return Err(WireError::TooLarge {
            what: format!("`{field}` encoded size"),
            limit: limits::MAX_RECORD_BYTES,
        });
    }
    if fields
        .keys()
        .any(|k| k.is_empty() || k.len() > limits::MAX_ID_LEN)
    {
        return Err(invalid(field, "field names must be 1 to 128 bytes"));
    }
    Ok(())
}

impl Mutation {
    /// Checks every protocol rule a single mutation must satisfy.
    pub fn validate(&self, at: &str) -> Result<(), WireError> {
        validate_id(&format!("{at}.op_id"), &self.op_id)?;
        validate_id(&format!("{at}.client_id"), &self.client_id)?;
        validate_collection(&format!("{at}.collection"), &self.collection)?;
        validate_id(&format!("{at}.record_id"), &self.record_id)?;
        validate_number(&format!("{at}.seq"), self.seq)?;
        validate_number(&format!("{at}.base_version"), self.base_version)?;
        if self.seq == 0 {
            return Err(invalid(format!("{at}.seq"), "starts at 1"));
        }
        validate_fields(&format!("{at}.patch"), &self.patch)?;
        match self.op {
            OpKind::Update if self.base_version == 0 => Err(invalid(
                format!("{at}.base_version"),
                "an update needs the version it was made against",
            )),
            OpKind::Delete if self.base_version == 0 => Err(invalid(
                format!("{at}.base_version"),
                "a delete needs the version it was made against",
            )),
            OpKind::Delete if !self.patch.is_empty() => {
                Err(invalid(format!("{at}.patch"), "a delete carries no patch"))
            }
            _ => Ok(()),
        }
    }

    /// A stable digest of the body, so a replayed op id with a different body is detected.
    pub fn body_digest(&self) -> u64 {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        fnv1a64(&bytes)
    }
}

/// 64-bit FNV-1a: small, deterministic, good enough to tell two bodies apart.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl PushRequest {
    /// Decodes and validates a push body.
    pub fn decode(bytes: &[u8]) -> Result<PushRequest, WireError> {
        let req: PushRequest = decode(bytes, limits::MAX_PUSH_BYTES, "push body")?;
        req.validate()?;
        Ok(req)
    }

    /// Checks the protocol rules of a whole push: sizes, ids, order within the batch.
    pub fn validate(&self) -> Result<(), WireError> {
        validate_id("client_id", &self.client_id)?;
        if self.mutations.len() > limits::MAX_MUTATIONS_PER_PUSH {
            return Err(WireError::TooLarge {
                what: "mutation count".into(),
                limit: limits::MAX_MUTATIONS_PER_PUSH,
            });
        }
        let mut seen_ops = std::collections::HashSet::new();
        let mut last_seq: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for (i, m) in self.mutations.iter().enumerate() {
            let at = format!("mutations[{i}]");
            m.validate(&at)?;
            if !seen_ops.insert(m.op_id.as_str()) {
                return Err(invalid(format!("{at}.op_id"), "appears twice in one push"));
            }
            let prev = last_seq.insert(m.client_id.as_str(), m.seq);
            if prev.is_some_and(|p| p >= m.seq) {
                return Err(invalid(
                    format!("{at}.seq"),
                    "must increase within one client's mutations",
                ));
            }
        }
        Ok(())
    }
}

impl PushResponse {
    pub fn decode(bytes: &[u8]) -> Result<PushResponse, WireError> {
        decode(bytes, usize::MAX, "push response")
    }
}

impl PullResponse {
    pub fn decode(bytes: &[u8]) -> Result<PullResponse, WireError> {
        let page: PullResponse = decode(bytes, usize::MAX, "pull response")?;
        for (i, r) in page.changes.iter().enumerate() {
            validate_collection(&format!("changes[{i}].collection"), &r.collection)?;
            validate_id(&format!("changes[{i}].id"), &r.id)?;
            if r.version == 0 {
                return Err(invalid(
                    format!("changes[{i}].version"),
                    "versions start at 1",
                ));
            }
        }
        Ok(page)
    }
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod pull_collections_tests {
    use super::*;

    #[test]
    fn collections_are_parsed_sorted_without_repeats() {
        assert_eq!(
            parse_pull_collections("tasks,alerts,tasks").unwrap(),
            vec!["alerts".to_string(), "tasks".to_string()]
        );
    }

    #[test]
    fn bad_collection_lists_are_refused_with_the_field_named() {
        for bad in ["", "a,,b", "Tasks", "tasks,", "a b", "1st"] {
            match parse_pull_collections(bad) {
                Err(WireError::Invalid { field, .. }) => {
                    assert_eq!(field, "collections", "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let many = (0..=limits::MAX_PULL_COLLECTIONS)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_pull_collections(&many).is_err());
        let enough = (0..limits::MAX_PULL_COLLECTIONS)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            parse_pull_collections(&enough).unwrap().len(),
            limits::MAX_PULL_COLLECTIONS
        );
    }
}
