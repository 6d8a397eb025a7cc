//! PostgreSQL: for production and scale-out (many server processes on one database).
//!
//! A push locks its tenant's row first (an upsert of it that returns the head), so pushes of one tenant
//! serialise across every process while other tenants proceed in parallel; the change log
//! positions are the tenant's own counter, never a global sequence. A push that advances the
//! cursor sends `pg_notify` inside its transaction (delivered on commit), and every process
//! LISTENs and feeds its local [`Hub`], so a poke crosses processes.

use super::barrier::{self, Barrier};
use super::gate::Gate;
use super::pull_view;
use super::sql::{Applied, Backend, PushTx};
use super::{fresh_epoch, CompactReport, DbError, DbOptions, Push, PushOutcome};
use crate::hub::{Hub, NOTIFY_CHANNEL};
use crate::permissions_filter::View;
use ferry_core::apply::PullError;
use ferry_core::protocol::PullResponse;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

impl Backend for Postgres {
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// With `IN (…)`, PostgreSQL may scan every row of the tenant (or of its collection) and
    /// filter the keys (see `statements::by_key`).
    const LOOKUPS_BY_KEY: bool = true;
}

/// Any lock id works, as long as every Ferry process uses the same one.
const MIGRATION_LOCK: i64 = 0x4665_7272_7900;

/// Aborts the LISTEN and barrier tasks when the last handle on the database goes.
#[derive(Debug)]
struct ListenTask(Vec<JoinHandle<()>>);

impl Drop for ListenTask {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Every statement is prepared and cached per connection, the push's `IN (…)` lists too; with
/// the default plan cache PostgreSQL may switch a prepared statement to a generic plan after
/// five executions, which once made the prefetch 2x slower with 3 s stalls (ARCHITECTURE.md,
/// "The prefetch on PostgreSQL"). This keeps every execution planned with its values, as an
/// unprepared statement is, while saving the parse round trip. An engine without the setting
/// (PostgreSQL before 12) keeps its default: slower perhaps, never wrong.
async fn custom_plans_only(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    if let Err(e) = conn
        .execute("SET plan_cache_mode = force_custom_plan")
        .await
    {
        tracing::warn!(error = %e, "plan_cache_mode not set; prepared statements may use generic plans");
    }
    Ok(())
}

/// How long a conditional pull waits for its NOTIFY barrier before it asks the database.
const BARRIER_TIMEOUT: Duration = Duration::from_millis(500);

/// A PostgreSQL database and this process's LISTEN task.
#[derive(Clone, Debug)]
pub struct PgDb {
    pool: PgPool,
    /// How a push transaction starts (its isolation level).
    begin_push: &'static str,
    /// The identity of the database's history, read at start.
    pub(crate) epoch: String,
    /// Every operation goes through it (see [`Gate`]).
    pub(crate) gate: Arc<Gate>,
    /// The pokes this process received, as heads (shared with the hub).
    hub: Hub,
    barrier: Arc<Barrier>,
    _listen: Arc<ListenTask>,
}

impl PgDb {
    /// Connects, migrates (under an advisory lock, so processes may start together) and
    /// starts listening for pokes before it returns.
    pub async fn connect(db: &DbOptions, hub: Hub) -> Result<Self, DbError> {
        let options =
            PgConnectOptions::from_str(&db.url).map_err(|e| DbError::Config(e.to_string()))?;
        let pool_size = db.max_connections.max(2);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(db.acquire_timeout)
            .after_connect(|conn, _| Box::pin(custom_plans_only(conn)))
            .connect_with(options)
            .await?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let applied = Postgres::migrate_in(&mut tx).await?;
        let epoch = Postgres::epoch_in(&mut tx, &fresh_epoch()).await?;
        tx.commit().await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "postgres migrations applied");
        }
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let barrier = Arc::new(Barrier::default());
        let tasks = vec![
            tokio::spawn(listen_loop(
                listener,
                pool.clone(),
                hub.clone(),
                barrier.clone(),
            )),
            tokio::spawn(barrier::send_loop(barrier.clone(), pool.clone())),
        ];
        let begin_push = if db.serializable {
            "BEGIN ISOLATION LEVEL SERIALIZABLE"
        } else {
            "BEGIN ISOLATION LEVEL READ COMMITTED"
        };
        Ok(PgDb {
            pool,
            begin_push,
            epoch,
            // One connection of the pool is the LISTEN connection's.
            gate: Arc::new(Gate::new(pool_size as usize - 1)),
            hub,
            barrier,
            _listen: Arc::new(ListenTask(tasks)),
        })
    }

    pub(crate) async fn try_push(&self, push: &Push<'_>) -> Result<PushOutcome, DbError> {
        let tx = self.pool.begin_with(self.begin_push).await?;
        match PushTx::apply(tx, push).await? {
            Ok(Applied {
                mut ptx,
                response,
                advanced,
            }) => {
                if let Some(head) = advanced {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(NOTIFY_CHANNEL)
                        .bind(Hub::encode(push.tenant, head))
                        .execute(&mut *ptx.tx)
                        .await?;
                }
                ptx.tx.commit().await?;
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
        let generation = self.hub.heads().generation();
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let page =
            pull_view::pull_in::<Postgres>(&mut tx, tenant, cursor, limit, view, collections)
                .await?;
        tx.commit().await?;
        if let Ok(page) = &page {
            self.learn_head(tenant, page.head, generation);
        }
        Ok(page)
    }

    /// Whether `tenant`'s head is exactly `cursor`: from the heads the pokes vouch for once a
    /// NOTIFY barrier proves every earlier commit was received; from the database when in
    /// doubt (the barrier did not come back, or this process has not seen the tenant).
    pub(crate) async fn head_is(&self, tenant: &str, cursor: u64) -> Result<bool, DbError> {
        let generation = self.hub.heads().generation();
        if self.barrier.pass(BARRIER_TIMEOUT).await {
            if let Some(head) = self.hub.heads().get(tenant) {
                return Ok(head == cursor);
            }
        }
        let head = self.gate.run(self.head(tenant)).await?;
        self.hub.heads().learn(tenant, head, generation);
        Ok(head == cursor)
    }

    /// Remembers the head a pull read (taken after `generation`), so later polls of the
    /// tenant need not read it again.
    fn learn_head(&self, tenant: &str, head: u64, generation: u64) {
        self.hub.heads().learn(tenant, head, generation);
    }

    pub(crate) async fn head(&self, tenant: &str) -> Result<u64, DbError> {
        let mut conn = self.pool.acquire().await?;
        Ok(Postgres::head_of(&mut conn, tenant).await?.0)
    }

    pub(crate) async fn compact(&self, tenant: &str, upto: u64) -> Result<CompactReport, DbError> {
        let tx = self.pool.begin().await?;
        PushTx::compact_in(tx, tenant, upto).await
    }

    pub(crate) async fn mark_heads(&self, now_ms: u64) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        Postgres::mark_heads_in(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn compaction_targets(
        &self,
        cutoff_ms: u64,
    ) -> Result<Vec<(String, u64)>, DbError> {
        let mut tx = self.pool.begin().await?;
        let targets = Postgres::compaction_targets_in(&mut tx, cutoff_ms).await?;
        tx.commit().await?;
        Ok(targets)
    }

    pub(crate) async fn drop_marks(&self, tenant: &str, upto: u64) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        Postgres::drop_marks_in(&mut tx, tenant, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn prune(
        &self,
        keys_before: Option<u64>,
        ops_before: Option<u64>,
    ) -> Result<(u64, u64), DbError> {
        let mut tx = self.pool.begin().await?;
        let pruned = Postgres::prune_in(&mut tx, keys_before, ops_before).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    pub(crate) async fn rotate_epoch(&self, fresh: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        Postgres::rotate_epoch_in(&mut tx, fresh).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Feeds NOTIFY payloads into the hub. After a lost connection (pokes may have been missed)
/// every stream is told to re-read its cursor; the listener reconnects by itself.
async fn listen_loop(mut listener: PgListener, pool: PgPool, hub: Hub, barrier: Arc<Barrier>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(note)) if barrier.on_notification(note.payload()) => {}
            Ok(Some(note)) => match Hub::decode(note.payload()) {
                Some((tenant, cursor)) => hub.poke(tenant, cursor),
                None => tracing::warn!("ignoring a malformed poke notification"),
            },
            Ok(None) => hub.resync(),
            // The server is shutting down: the pool closed under the listener.
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if pool.is_closed() {
                    return;
                }
                match PgListener::connect_with(&pool).await {
                    Ok(mut fresh) => {
                        if fresh.listen(NOTIFY_CHANNEL).await.is_ok() {
                            listener = fresh;
                            hub.resync();
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not reconnect LISTEN"),
                }
            }
        }
    }
}
