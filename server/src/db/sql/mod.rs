//! The SQL both backends share, written once as generic code over [`Backend`].
//!
//! The statements are portable (`$n` parameters, `ON CONFLICT`, `BOOLEAN`, `BIGINT`), so
//! SQLite and PostgreSQL run the very same queries, and a push ([`PushTx::apply`]) or a
//! compaction ([`PushTx::compact_in`]) follows the same steps on both. Each backend's
//! [`Backend`] impl supplies only what differs: how a statement's affected rows are read. How a transaction begins, and what a push adds
//! before its commit (PostgreSQL's `pg_notify`), stay in `sqlite.rs` / `postgres.rs`.
//! [`PushTx`] is the [`ferry_core::apply::ApplyTx`] the core's `process_push` runs on.
//!
//! A push transaction remembers what it read and wrote (records, clients' last seqs, ops), so
//! the apply rules' repeated lookups are answered from memory, and what it writes waits in
//! memory too: [`PushTx::finish`] sends the records and ops as multi-row statements and the
//! clients' last seqs once per client. Each statement is a round trip to the database (or to
//! SQLite's worker thread) made while the tenant's lock is held, so their number, not their
//! size, bounds a tenant's push rate: a push of 50 mutations went from about 110 statements
//! to about 10 (ARCHITECTURE.md, "Push statements"). [`PushTx::prefetch`] also fills those maps
//! up front with one statement per table (per collection for records), on both backends. All
//! of it happens inside the transaction that holds the tenant's lock, so nothing else can
//! change those rows meanwhile.
//!
//! sqlx's bounds (an executor over `&mut` connection, the column and value types the
//! statements bind and read) are not implied by a trait bound, so the three generic blocks
//! below — [`Backend`]'s provided methods, `impl PushTx` and `impl ApplyTx for PushTx` — each
//! carry the same `where` clause.

use super::{CompactReport, DbError, Push, PushOutcome};
use ferry_core::apply::{
    process_digested_push, ApplyTx, Bounds, PushError, StoredOp, StoredOutcome,
};
use ferry_core::protocol::{Mutation, PushRequest, PushResponse, Record};
use sqlx::database::HasStatementCache;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _, Type};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod apply_tx;
mod push_tx;
mod statements;
#[cfg(test)]
mod tests;

pub(crate) use push_tx::{Applied, PushTx};

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// What differs between the sqlx drivers; the tenant-wide statements are its provided methods.
pub(crate) trait Backend: Database + HasStatementCache
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'q> Self::Arguments<'q>: IntoArguments<'q, Self>,
    for<'q> i64: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> bool: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> String: Encode<'q, Self> + Decode<'q, Self> + Type<Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self>,
    for<'q> Option<&'q str>: Encode<'q, Self>,
    for<'a> &'a str: ColumnIndex<Self::Row>,
    usize: ColumnIndex<Self::Row>,
{
    /// How many rows a statement changed (sqlx has no driver-independent accessor).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Whether the push's prefetch looks rows up one primary key at a time
    /// ([`statements::by_key`]) rather than with one `IN (…)` list.
    const LOOKUPS_BY_KEY: bool = false;

    /// The tenant's (head, horizon); (0, 0) for a tenant that never pushed.
    async fn head_of(conn: &mut Self::Connection, tenant: &str) -> Result<(u64, u64), DbError> {
        let row = sqlx::query("SELECT head, horizon FROM tenants WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok((
                to_u64(row.try_get("head")?),
                to_u64(row.try_get("horizon")?),
            )),
            None => Ok((0, 0)),
        }
    }

    /// Marks every tenant whose head moved since its last mark with (`now_ms`, head).
    async fn mark_heads_in(conn: &mut Self::Connection, now_ms: u64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO tenant_marks (tenant, at_ms, head)
                 SELECT t.tenant, $1, t.head FROM tenants t
                 WHERE t.head > COALESCE((SELECT MAX(m.head) FROM tenant_marks m WHERE m.tenant = t.tenant), 0)
                 ON CONFLICT (tenant, at_ms) DO NOTHING",
        )
        .bind(to_i64(now_ms))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Tenants with a head marked at or before `cutoff_ms` beyond their horizon, with that
    /// head: what scheduled compaction may compact up to.
    async fn compaction_targets_in(
        conn: &mut Self::Connection,
        cutoff_ms: u64,
    ) -> Result<Vec<(String, u64)>, DbError> {
        let rows = sqlx::query(
            "SELECT m.tenant AS tenant, MAX(m.head) AS upto FROM tenant_marks m
                 JOIN tenants t ON t.tenant = m.tenant
                 WHERE m.at_ms <= $1
                 GROUP BY m.tenant, t.horizon
                 HAVING MAX(m.head) > t.horizon",
        )
        .bind(to_i64(cutoff_ms))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("tenant")?, to_u64(row.try_get("upto")?))))
            .collect()
    }

    /// Drops the marks a compaction up to `upto` made useless (keeps the newest of them).
    async fn drop_marks_in(
        conn: &mut Self::Connection,
        tenant: &str,
        upto: u64,
    ) -> Result<(), DbError> {
        sqlx::query("DELETE FROM tenant_marks WHERE tenant = $1 AND head < $2")
            .bind(tenant)
            .bind(to_i64(upto))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Deletes idempotency keys created before `keys_before` and ops stored before
    /// `ops_before` (ms since the Unix epoch); returns how many of each.
    async fn prune_in(
        conn: &mut Self::Connection,
        keys_before: Option<u64>,
        ops_before: Option<u64>,
    ) -> Result<(u64, u64), DbError> {
        let mut pruned = (0, 0);
        if let Some(before) = keys_before {
            let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(to_i64(before))
                .execute(&mut *conn)
                .await?;
            pruned.0 = Self::rows_affected(&result);
        }
        if let Some(before) = ops_before {
            let result = sqlx::query("DELETE FROM ops WHERE created_at < $1")
                .bind(to_i64(before))
                .execute(&mut *conn)
                .await?;
            pruned.1 = Self::rows_affected(&result);
        }
        Ok(pruned)
    }

    /// The database's epoch, created with `fresh` if it has none yet.
    async fn epoch_in(conn: &mut Self::Connection, fresh: &str) -> Result<String, DbError> {
        sqlx::query(
            "INSERT INTO server_meta (name, value) VALUES ('epoch', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(fresh)
        .execute(&mut *conn)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM server_meta WHERE name = 'epoch'")
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    /// Replaces the database's epoch with `fresh`.
    async fn rotate_epoch_in(conn: &mut Self::Connection, fresh: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE server_meta SET value = $1 WHERE name = 'epoch'")
            .bind(fresh)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Applies the migrations not yet applied, inside the caller's transaction.
    async fn migrate_in(conn: &mut Self::Connection) -> Result<Vec<i64>, DbError> {
        use super::schema::{CREATE_MIGRATIONS_TABLE, MIGRATIONS};
        sqlx::query(CREATE_MIGRATIONS_TABLE)
            .execute(&mut *conn)
            .await?;
        let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM ferry_migrations")
            .fetch_all(&mut *conn)
            .await?;
        let mut applied = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
            for statement in m.statements {
                sqlx::query(statement).execute(&mut *conn).await?;
            }
            sqlx::query("INSERT INTO ferry_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(m.version)
                .bind(crate::auth::now_secs().to_string())
                .execute(&mut *conn)
                .await?;
            applied.push(m.version);
        }
        Ok(applied)
    }

    /// A `records` row as a [`Record`].
    fn decode_record(row: &Self::Row) -> Result<Record, DbError> {
        let fields: String = row.try_get("fields")?;
        let hlc: String = row.try_get("hlc")?;
        Ok(Record {
            collection: row.try_get("collection")?,
            id: row.try_get("id")?,
            version: to_u64(row.try_get("version")?),
            fields: serde_json::from_str(&fields)
                .map_err(|e| DbError::Corrupt(format!("record fields: {e}")))?,
            deleted: row.try_get("deleted")?,
            hlc: ferry_core::Hlc::parse(&hlc).map_err(DbError::Corrupt)?,
        })
    }

    /// An `ops` row as a [`StoredOp`].
    fn decode_op(row: &Self::Row) -> Result<StoredOp, DbError> {
        let digest: i64 = row.try_get("digest")?;
        let kind: String = row.try_get("outcome")?;
        let outcome = match kind.as_str() {
            "accepted" => StoredOutcome::Accepted {
                version: to_u64(row.try_get::<Option<i64>, _>("version")?.unwrap_or(0)),
            },
            "conflict" => StoredOutcome::Conflict,
            "rejected" => StoredOutcome::Rejected {
                code: row
                    .try_get::<Option<String>, _>("code")?
                    .unwrap_or_default(),
                message: row
                    .try_get::<Option<String>, _>("message")?
                    .unwrap_or_default(),
            },
            other => return Err(DbError::Corrupt(format!("unknown op outcome `{other}`"))),
        };
        Ok(StoredOp {
            digest: digest as u64,
            outcome,
        })
    }
}
