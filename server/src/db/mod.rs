//! Storage: the tenant-scoped operations the routes need, over SQLite or PostgreSQL.
//!
//! Both backends run the same SQL ([`sql`]) and the same apply rules (ferry-core's
//! `process_push`, through an `ApplyTx` over one database transaction per push). A push that
//! fails on a serialization failure or deadlock (SQLSTATE 40001 / 40P01, as distributed
//! engines report under contention) or on a busy SQLite file is retried from the start
//! ([`retry`]).

mod barrier;
mod gate;
pub mod postgres;
pub(crate) mod pull_view;
pub mod retry;
pub mod schema;
mod sql;
pub mod sqlite;

use crate::hub::Hub;
use crate::permissions_filter::View;
use crate::validation::Rules;
use ferry_core::apply::PullError;
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("bad database configuration: {0}")]
    Config(String),
}

impl DbError {
    /// Whether the database could not be reached (no connection within the acquire timeout,
    /// a dropped connection, a pool closed by shutdown): answered 503 with `Retry-After`
    /// rather than 500, because the same request will succeed once the database is back.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            DbError::Sql(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        ) || matches!(self, DbError::Sql(sqlx::Error::Database(e))
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            if e.code().is_some_and(|c| ["57P01", "57P02", "57P03", "53300"].contains(&c.as_ref())))
    }
}

/// Milliseconds since the Unix epoch, by this process's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A new random epoch: 128 bits as 32 hex digits (within `limits::MAX_EPOCH_LEN`).
pub fn fresh_epoch() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// What became of a push.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// Committed (or replayed): the response to send.
    Applied(PushResponse),
    /// The Idempotency-Key was used before with another body; nothing was written.
    KeyReused,
    /// An op id was processed before with another body; nothing was written.
    OpReused { op_id: String },
    /// A client id of the push is bound to another user of the tenant; nothing was written.
    ForeignClient { client_id: String },
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactReport {
    /// Tombstones removed.
    pub removed: u64,
    /// The tenant's compaction horizon now: pulls from older cursors get 410.
    pub horizon: u64,
}

/// One push as the storage runs it.
#[derive(Debug)]
pub struct Push<'a> {
    pub tenant: &'a str,
    /// The token's user: client ids are bound to it, and ops record it.
    pub user: &'a str,
    pub idempotency_key: &'a str,
    pub body_digest: &'a str,
    pub req: &'a PushRequest,
    pub rules: &'a Rules,
}

impl Push<'_> {
    /// Every client id the push writes as (each mutation's, and the sender's).
    pub fn clients(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = std::iter::once(self.req.client_id.as_str())
            .chain(self.req.mutations.iter().map(|m| m.client_id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Options for opening a database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite://file.db`, `sqlite::memory:` or `postgres://...`.
    pub url: String,
    /// PostgreSQL pool size per process.
    pub max_connections: u32,
    /// PostgreSQL: run pushes SERIALIZABLE (as CockroachDB and YugabyteDB do by default)
    /// instead of READ COMMITTED. Contended pushes then fail with 40001 and are retried.
    pub serializable: bool,
    /// How long a request waits for a connection (PostgreSQL) before it fails as
    /// unavailable: a database outage is answered fast instead of hanging requests.
    pub acquire_timeout: std::time::Duration,
}

impl DbOptions {
    pub fn new(url: impl Into<String>) -> Self {
        DbOptions {
            url: url.into(),
            max_connections: 10,
            serializable: false,
            acquire_timeout: std::time::Duration::from_secs(2),
        }
    }
}

/// The database of a server process. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PgDb),
}

/// Whether a URL names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Db {
    /// Connects and migrates; pokes of committed pushes go to `hub`.
    pub async fn connect(options: &DbOptions, hub: Hub) -> Result<Db, DbError> {
        if is_postgres_url(&options.url) {
            Ok(Db::Postgres(postgres::PgDb::connect(options, hub).await?))
        } else if options.url.starts_with("sqlite:") {
            Ok(Db::Sqlite(
                sqlite::SqliteDb::connect(&options.url, hub).await?,
            ))
        } else {
            Err(DbError::Config(
                "the database URL must start with sqlite: or postgres://".into(),
            ))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Runs a push in one transaction, retrying transient failures.
    pub async fn push(&self, push: &Push<'_>) -> Result<PushOutcome, DbError> {
        retry::with_retries(|| async {
            match self {
                Db::Sqlite(db) => db.try_push(push).await,
                Db::Postgres(db) => db.gate.run(db.try_push(push)).await,
            }
        })
        .await
    }

    /// The identity of this database's history (read when the server started).
    pub fn epoch(&self) -> &str {
        match self {
            Db::Sqlite(db) => &db.epoch,
            Db::Postgres(db) => &db.epoch,
        }
    }

    /// Gives the database a new epoch (after a restore); returns it. Servers running on the
    /// database keep answering with the old one until restarted.
    pub async fn rotate_epoch(&self) -> Result<String, DbError> {
        let fresh = fresh_epoch();
        match self {
            Db::Sqlite(db) => db.rotate_epoch(&fresh).await?,
            Db::Postgres(db) => db.gate.run(db.rotate_epoch(&fresh)).await?,
        }
        Ok(fresh)
    }

    /// One page of changes after `cursor`, as `view`'s user sees it (partial sync), of the
    /// named collections only (none named: all).
    pub async fn pull(
        &self,
        tenant: &str,
        cursor: u64,
        limit: u32,
        view: &View,
        collections: &[String],
    ) -> Result<Result<PullResponse, PullError>, DbError> {
        match self {
            Db::Sqlite(db) => db.pull(tenant, cursor, limit, view, collections).await,
            Db::Postgres(db) => {
                db.gate
                    .run(db.pull(tenant, cursor, limit, view, collections))
                    .await
            }
        }
    }

    /// Whether nothing changed after `cursor`: the tenant's head is exactly `cursor` (a
    /// conditional pull's question). PostgreSQL answers from this process's heads when a
    /// NOTIFY barrier vouches for them; SQLite, which has no notifications between processes
    /// sharing a file, reads the one head row.
    pub async fn head_is(&self, tenant: &str, cursor: u64) -> Result<bool, DbError> {
        match self {
            Db::Sqlite(db) => Ok(db.head(tenant).await? == cursor),
            Db::Postgres(db) => db.head_is(tenant, cursor).await,
        }
    }

    /// The tenant's newest cursor (0 if it never pushed).
    pub async fn head(&self, tenant: &str) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(db) => db.head(tenant).await,
            Db::Postgres(db) => db.gate.run(db.head(tenant)).await,
        }
    }

    /// Removes the tenant's tombstones logged at or before `upto` and raises its horizon.
    pub async fn compact(&self, tenant: &str, upto: u64) -> Result<CompactReport, DbError> {
        retry::with_retries(|| async {
            match self {
                Db::Sqlite(db) => db.compact(tenant, upto).await,
                Db::Postgres(db) => db.gate.run(db.compact(tenant, upto)).await,
            }
        })
        .await
    }

    /// Marks every tenant whose head moved with (`now_ms`, head), for scheduled compaction.
    pub async fn mark_heads(&self, now_ms: u64) -> Result<(), DbError> {
        retry::with_retries(|| async {
            match self {
                Db::Sqlite(db) => db.mark_heads(now_ms).await,
                Db::Postgres(db) => db.gate.run(db.mark_heads(now_ms)).await,
            }
        })
        .await
    }

    /// (tenant, cursor) pairs: each tenant's newest head marked at or before `cutoff_ms`,
    /// where it is beyond the tenant's horizon.
    pub async fn compaction_targets(&self, cutoff_ms: u64) -> Result<Vec<(String, u64)>, DbError> {
        match self {
            Db::Sqlite(db) => db.compaction_targets(cutoff_ms).await,
            Db::Postgres(db) => db.gate.run(db.compaction_targets(cutoff_ms)).await,
        }
    }

    /// Drops a tenant's marks below `upto` once it was compacted up to it.
    pub async fn drop_marks(&self, tenant: &str, upto: u64) -> Result<(), DbError> {
        retry::with_retries(|| async {
            match self {
                Db::Sqlite(db) => db.drop_marks(tenant, upto).await,
                Db::Postgres(db) => db.gate.run(db.drop_marks(tenant, upto)).await,
            }
        })
        .await
    }

    /// Deletes idempotency keys and ops stored before the given times; (keys, ops) deleted.
    pub async fn prune(
        &self,
        keys_before: Option<u64>,
        ops_before: Option<u64>,
    ) -> Result<(u64, u64), DbError> {
        retry::with_retries(|| async {
            match self {
                Db::Sqlite(db) => db.prune(keys_before, ops_before).await,
                Db::Postgres(db) => db.gate.run(db.prune(keys_before, ops_before)).await,
            }
        })
        .await
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(db) => db.ping().await,
            Db::Postgres(db) => db.gate.run(db.ping()).await,
        }
    }

    /// Closes the pools (waits for checked-out connections).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(db) => db.close().await,
            Db::Postgres(db) => db.close().await,
        }
    }
}
