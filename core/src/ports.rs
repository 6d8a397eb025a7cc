//! The ports through which the core meets the world: storage, network, time, randomness
//! and credentials. Adapters (IndexedDB + fetch in the browser, in-memory in tests and the
//! simulation) implement them; the core never reaches past them.
//!
//! The traits use `async fn` without `Send` bounds: the engine runs on one thread (a browser
//! tab or a simulation step), and in-memory implementations complete at once.
#![allow(async_fn_in_trait)]

use crate::protocol::{PullResponse, PushRequest, PushResponse};
use crate::replica::{StoredState, WriteBatch};
use crate::role::Role;
use std::fmt;

/// Milliseconds since the Unix epoch. The only source of time the core sees.
pub trait Clock {
    fn now_ms(&self) -> u64;
}

/// Randomness for ids and jitter. The only source of randomness the core sees.
pub trait Entropy {
    fn next_u64(&self) -> u64;
}

/// Why storage failed. Every failure leaves what was stored before intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The browser refused to store more (QuotaExceededError).
    QuotaExceeded(String),
    /// The database is being upgraded by another tab, or was closed.
    Unavailable(String),
    /// Stored data failed to decode or authenticate (corruption or tampering).
    Corrupt(String),
    /// The storage under the replica is gone: deleted, evicted or cleared while the app ran
    /// (what is there now is not the database the replica was loaded from).
    Lost(String),
    /// Any other storage failure.
    Other(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::QuotaExceeded(m) => write!(f, "storage quota exceeded: {m}"),
            StoreError::Unavailable(m) => write!(f, "storage unavailable: {m}"),
            StoreError::Corrupt(m) => write!(f, "stored data is corrupt: {m}"),
            StoreError::Lost(m) => write!(f, "storage lost: {m}"),
            StoreError::Other(m) => write!(f, "storage failed: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Durable storage of one replica. `commit` is atomic: all of a batch or none of it.
pub trait Store {
    /// Everything stored, as of the last successful commit.
    async fn load(&self) -> Result<StoredState, StoreError>;
    /// Makes a batch durable in one transaction.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// What another writer's commits may have changed, as of the last successful commit:
    /// the meta, outbox, conflicts and dead letters whole, and of the records only those of
    /// `keys` that exist (see `replica/refresh.rs`). A store that can read rows by key
    /// should; this default reads everything and keeps those.
    async fn load_part(
        &self,
        keys: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<StoredState, StoreError> {
        let mut stored = self.load().await?;
        stored
            .records
            .retain(|r| keys.contains(&(r.collection.clone(), r.id.clone())));
        Ok(stored)
    }
    /// The role of the replica this store serves changed (see [`Role`]); a store shared by
    /// several writers may commit more cheaply for the leader.
    fn set_role(&self, _role: Role) {}
    /// Whether the storage still is the one the replica was loaded from
    /// ([`StoreError::Lost`] otherwise).
    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// After [`StoreError::Lost`]: makes `everything` (the whole replica) the stored state,
    /// in one transaction, and adopts the storage that is there now as the replica's own.
    async fn recreate(&self, everything: &WriteBatch) -> Result<(), StoreError> {
        self.commit(everything).await
    }
}

/// Per-request metadata the transport puts on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMeta {
    /// `Idempotency-Key` of a push: the same for every retry of the same batch.
    pub idempotency_key: String,
    /// W3C `traceparent`, one trace id per sync cycle.
    pub traceparent: String,
    /// Bearer token, if the app gave one.
    pub token: Option<String>,
    /// A pull's `If-None-Match` ([`crate::conditional::pull_etag`]): a transport that gets
    /// `304` answers with [`crate::conditional::not_modified_page`] of the validator.
    pub if_none_match: Option<String>,
    /// Pull only: the view fingerprint the replica's records were pulled under (partial
    /// sync, PROTOCOL.md §10); empty before the first page from a server that sends one.
    pub view: String,
    /// The app's data version (`Ferry-Data-Version`; 0: never migrated, header left out).
    pub data_version: u32,
    /// A push's most urgent collection priority (`Ferry-Priority`); `None` on pulls.
    pub priority: Option<crate::priority::Priority>,
    /// Pull only: the page holds only these collections (`collections=`, PROTOCOL.md §4);
    /// empty: every collection. A first sync's critical-first pass names its critical ones.
    pub collections: Vec<String>,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// No network: the request never reached the server (or we cannot know it did).
    Network(String),
    /// No answer in time; the server may or may not have applied the request.
    Timeout,
    /// 401: the token is missing, expired or invalid; the server's typed code (e.g.
    /// `token_expired`) and message, or `token_unavailable` and the app's reason when the
    /// app could not give a token.
    Unauthorized { code: String, message: String },
    /// 410 on pull: the cursor is older than the server's compaction horizon.
    CursorExpired,
    /// Any other non-2xx answer.
    Http {
        status: u16,
        code: String,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// A 2xx answer whose body did not decode.
    Decode(String),
}

impl TransportError {
    /// Whether the same request may succeed later without a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Network(_)
            | TransportError::Timeout
            | TransportError::Unauthorized { .. } => true,
            TransportError::CursorExpired => true,
            TransportError::Http { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            TransportError::Decode(_) => true,
        }
    }
}

impl TransportError {
    /// A 401 whose answer said nothing usable (no `{error: {code, message}}` body).
    pub fn unauthorized() -> Self {
        TransportError::Unauthorized {
            code: "unauthorized".into(),
            message: "the server refused the credentials (401)".into(),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Network(m) => write!(f, "network error: {m}"),
            TransportError::Timeout => write!(f, "the request timed out"),
            TransportError::Unauthorized { code, message } => write!(f, "{code}: {message}"),
            TransportError::CursorExpired => write!(f, "the sync cursor expired (410)"),
            TransportError::Http {
                status,
                code,
                message,
                ..
            } => write!(f, "HTTP {status} {code}: {message}"),
            TransportError::Decode(m) => write!(f, "could not decode the server's answer: {m}"),
        }
    }
}

/// The sync server, as the engine talks to it.
pub trait Transport {
    async fn push(
        &self,
        req: &PushRequest,
        meta: &RequestMeta,
    ) -> Result<PushResponse, TransportError>;
    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError>;
}

/// The app's credentials. `refresh` asks for a new token after a 401.
pub trait TokenSource {
    /// `Ok(None)`: no token (an open server). `Err`: the app cannot give one now.
    async fn token(&self, refresh: bool) -> Result<Option<String>, String>;
}

/// A token source for servers that need none.
pub struct NoAuth;

impl TokenSource for NoAuth {
    async fn token(&self, _refresh: bool) -> Result<Option<String>, String> {
        Ok(None)
    }
}
