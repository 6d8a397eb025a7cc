//! Embedded SQLite: one file in WAL mode with `synchronous=FULL`, so an acknowledged push is
//! on disk before the 200 leaves.
//!
//! Writes go through a pool of one connection and start with `BEGIN IMMEDIATE`, which takes
//! SQLite's write lock up front: pushes (of every tenant) serialise, even across processes
//! sharing the file (they wait up to the busy timeout). Reads use a separate pool and see a
//! consistent snapshot per pull.

use super::pull_view;
use super::sql::{Applied, Backend, PushTx};
use super::{fresh_epoch, CompactReport, DbError, Push, PushOutcome};
use crate::hub::Hub;
use crate::permissions_filter::View;
use ferry_core::apply::PullError;
use ferry_core::protocol::PullResponse;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

impl Backend for Sqlite {
    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// The file a `sqlite:` URL names, or `None` for an in-memory database.
pub fn sqlite_file(url: &str) -> Result<Option<PathBuf>, DbError> {
    let options =
        SqliteConnectOptions::from_str(url).map_err(|e| DbError::Config(e.to_string()))?;
    let path = options.get_filename();
    Ok(
        (path.to_str() != Some(":memory:") && !path.as_os_str().is_empty())
            .then(|| path.to_path_buf()),
    )
}

/// An SQLite database: one writer connection, several readers.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    writer: SqlitePool,
    reader: SqlitePool,
    hub: Hub,
    /// The identity of the database's history, read at start.
    pub(crate) epoch: String,
}

impl SqliteDb {
    /// Opens (creating if missing) and migrates the database.
    pub async fn connect(url: &str, hub: Hub) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::Config(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let in_memory = sqlite_file(url)?.is_none();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(u32::from(in_memory))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        // An in-memory database exists once per connection: readers must share the writer.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?
        };
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let applied = Sqlite::migrate_in(&mut tx).await?;
        let epoch = Sqlite::epoch_in(&mut tx, &fresh_epoch()).await?;
        tx.commit().await?;
        let db = SqliteDb {
            writer,
            reader,
            hub,
            epoch,
        };
        if !applied.is_empty() {
            tracing::info!(?applied, "sqlite migrations applied");
        }
        Ok(db)
    }

    pub(crate) async fn try_push(&self, push: &Push<'_>) -> Result<PushOutcome, DbError> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        match PushTx::apply(tx, push).await? {
            Ok(Applied {
                ptx,
                response,
                advanced,
            }) => {
                ptx.tx.commit().await?;
                if let Some(head) = advanced {
                    self.hub.poke(push.tenant, head);
                }
                Ok(PushOutcome::Applied(response))
            }
            Err(refused) => Ok(refused),
        }
    }

    pub(crate) async fn pull(
        &self,
        tenant: &str,
        cursor: u64,
        limit: u32,
        view: &View,
        collections: &[String],
    ) -> Result<Result<PullResponse, PullError>, DbError> {
        let mut tx = self.reader.begin().await?;
        let page =
            pull_view::pull_in::<Sqlite>(&mut tx, tenant, cursor, limit, view, collections).await?;
        tx.commit().await?;
        Ok(page)
    }

    pub(crate) async fn head(&self, tenant: &str) -> Result<u64, DbError> {
        let mut conn = self.reader.acquire().await?;
        Ok(Sqlite::head_of(&mut conn, tenant).await?.0)
    }

    pub(crate) async fn compact(&self, tenant: &str, upto: u64) -> Result<CompactReport, DbError> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        PushTx::compact_in(tx, tenant, upto).await
    }

    pub(crate) async fn mark_heads(&self, now_ms: u64) -> Result<(), DbError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Sqlite::mark_heads_in(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn compaction_targets(
        &self,
        cutoff_ms: u64,
    ) -> Result<Vec<(String, u64)>, DbError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let targets = Sqlite::compaction_targets_in(&mut tx, cutoff_ms).await?;
        tx.commit().await?;
        Ok(targets)
    }

    pub(crate) async fn drop_marks(&self, tenant: &str, upto: u64) -> Result<(), DbError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Sqlite::drop_marks_in(&mut tx, tenant, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn prune(
        &self,
        keys_before: Option<u64>,
        ops_before: Option<u64>,
    ) -> Result<(u64, u64), DbError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let pruned = Sqlite::prune_in(&mut tx, keys_before, ops_before).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    pub(crate) async fn rotate_epoch(&self, fresh: &str) -> Result<(), DbError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Sqlite::rotate_epoch_in(&mut tx, fresh).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}
