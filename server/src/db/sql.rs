//! The SQL both backends share, written once as generic code over [`Backend`].
//!
//! The statements are portable (`$n` parameters, `ON CONFLICT`, `BOOLEAN`, `BIGINT`), so
//! SQLite and PostgreSQL run the very same queries, and a push ([`PushTx::apply`]) or a
//! compaction ([`PushTx::compact_in`]) follows the same steps on both. Each backend's
//! [`Backend`] impl supplies only what differs: the statement that locks the tenant's row and
//! how a statement's affected rows are read. How a transaction begins, and what a push adds
//! before its commit (PostgreSQL's `pg_notify`), stay in `sqlite.rs` / `postgres.rs`.
//! [`PushTx`] is the [`ferry_core::apply::ApplyTx`] the core's `process_push` runs on.
//!
//! A push transaction remembers what it read and wrote (records, clients' last seqs, ops), so
//! the apply rules' repeated lookups are answered from memory, and the clients' last seqs are
//! written once per client, by [`PushTx::finish`]. [`PushTx::prefetch`] also fills those maps
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
    process_push_within, ApplyTx, Bounds, PullError, PullPage, PushError, StoredOp, StoredOutcome,
};
use ferry_core::protocol::{Mutation, PullResponse, PushRequest, PushResponse, Record};
use sqlx::database::HasStatementCache;
use sqlx::{
    Arguments as _, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _, Type,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// Reads the tenant's head (`$1`: the tenant); on PostgreSQL it also row-locks it.
    const LOCK_TENANT: &'static str;

    /// How many rows a statement changed (sqlx has no driver-independent accessor).
    fn rows_affected(result: &Self::QueryResult) -> u64;

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

    /// One page of changes after `cursor`: run it inside one read snapshot.
    async fn pull_in(
        conn: &mut Self::Connection,
        tenant: &str,
        cursor: u64,
        limit: u32,
    ) -> Result<Result<PullResponse, PullError>, DbError> {
        let (head, horizon) = Self::head_of(conn, tenant).await?;
        let page = PullPage::new(cursor, limit);
        if let Err(e) = page.check(horizon) {
            return Ok(Err(e));
        }
        let limit = page.limit;
        let rows = sqlx::query(
            "SELECT collection, id, version, fields, deleted, hlc FROM records
                 WHERE tenant = $1 AND version > $2 ORDER BY version LIMIT $3",
        )
        .bind(tenant)
        .bind(to_i64(cursor))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let changes = rows
            .iter()
            .map(Self::decode_record)
            .collect::<Result<Vec<_>, _>>()?;
        let remaining = if changes.len() < limit as usize {
            0
        } else {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM records WHERE tenant = $1 AND version > $2",
            )
            .bind(tenant)
            .bind(to_i64(changes.last().map_or(cursor, |r| r.version)))
            .fetch_one(&mut *conn)
            .await?;
            to_u64(n)
        };
        Ok(Ok(page.answer(changes, remaining, head, horizon)))
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

/// One push (or compaction) transaction of one tenant, holding the tenant's lock.
pub(crate) struct PushTx<B: Database> {
    pub(crate) tx: sqlx::Transaction<'static, B>,
    pub(crate) tenant: String,
    /// The tenant's head as this transaction advances it.
    pub(crate) head: u64,
    /// The head when the transaction began.
    pub(crate) start: u64,
    /// Stored ops of the batch, once prefetched (an id not in it has none).
    ops: Option<HashMap<String, StoredOp>>,
    /// Records as this transaction knows them (`None`: known not to exist).
    records: HashMap<(String, String), Option<Record>>,
    /// Clients' last applied seqs as this transaction knows them.
    seqs: HashMap<String, u64>,
    /// Last seqs raised by this transaction, written by [`PushTx::finish`].
    raised_seqs: BTreeMap<String, u64>,
    /// The pushing user, stored with each op.
    pub(crate) user: Option<String>,
    /// When the transaction began (ms since the Unix epoch), stored with each op and key.
    pub(crate) now_ms: u64,
}

/// A push applied and finished but not yet committed (see [`PushTx::apply`]).
pub(crate) struct Applied<B: Database> {
    pub(crate) ptx: PushTx<B>,
    pub(crate) response: PushResponse,
    /// The tenant's new head, if the push moved it.
    pub(crate) advanced: Option<u64>,
}

/// Keys per `IN (…)` list: well under SQLite's limit on bound parameters.
const PREFETCH_CHUNK: usize = 500;

/// `<select> WHERE tenant = ? [AND <column> = ?] AND <key> IN (?, …)` and its arguments.
///
/// Each placeholder is written by the driver's arguments after its value is added, as sqlx's
/// `QueryBuilder` writes them (`?` on SQLite, `$n` on PostgreSQL). Not `QueryBuilder` itself:
/// its `build()` lends the arguments for the builder's own lifetime, which generic code cannot
/// shorten, so the builder could not be dropped after the query ran; here they move into it.
fn select_in<'a, B: Database>(
    select: &str,
    tenant: &str,
    also: Option<(&str, &str)>,
    key: &str,
    keys: &[&str],
) -> Result<(String, B::Arguments<'a>), DbError>
where
    String: Encode<'a, B> + Type<B>,
{
    fn bind<'a, B: Database>(
        sql: &mut String,
        args: &mut B::Arguments<'a>,
        value: &str,
    ) -> Result<(), sqlx::Error>
    where
        String: Encode<'a, B> + Type<B>,
    {
        args.add(value.to_owned()).map_err(sqlx::Error::Encode)?;
        args.format_placeholder(sql)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))
    }
    let mut sql = select.to_owned();
    let mut args = B::Arguments::default();
    sql.push_str(" WHERE tenant = ");
    bind::<B>(&mut sql, &mut args, tenant)?;
    if let Some((column, value)) = also {
        sql.push_str(&format!(" AND {column} = "));
        bind::<B>(&mut sql, &mut args, value)?;
    }
    sql.push_str(&format!(" AND {key} IN ("));
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        bind::<B>(&mut sql, &mut args, k)?;
    }
    sql.push(')');
    Ok((sql, args))
}

impl<B: Backend> PushTx<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> i64: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> bool: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> String: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> Option<i64>: Encode<'q, B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'a> &'a str: ColumnIndex<B::Row>,
    usize: ColumnIndex<B::Row>,
{
    /// Creates the tenant row if needed and locks it; pushes of a tenant serialise here.
    pub(crate) async fn lock(
        mut tx: sqlx::Transaction<'static, B>,
        tenant: &str,
    ) -> Result<Self, DbError> {
        sqlx::query("INSERT INTO tenants (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        let head: i64 = sqlx::query_scalar(B::LOCK_TENANT)
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
        Ok(PushTx {
            tx,
            tenant: tenant.to_owned(),
            head: to_u64(head),
            start: to_u64(head),
            ops: None,
            records: HashMap::new(),
            seqs: HashMap::new(),
            raised_seqs: BTreeMap::new(),
            user: None,
            now_ms: super::now_ms(),
        })
    }

    /// Binds each client id to the pushing user on its first use; returns a client id
    /// already bound to another user (the push is then refused before any effect).
    pub(crate) async fn bind_clients(
        &mut self,
        user: &str,
        clients: &[&str],
    ) -> Result<Option<String>, DbError> {
        self.user = Some(user.to_owned());
        for client in clients {
            let row: Option<Option<String>> = sqlx::query_scalar(
                "SELECT user_id FROM clients WHERE tenant = $1 AND client_id = $2",
            )
            .bind(&self.tenant)
            .bind(*client)
            .fetch_optional(&mut *self.tx)
            .await?;
            match row {
                Some(Some(owner)) if owner == user => {}
                Some(Some(_)) => return Ok(Some((*client).to_owned())),
                Some(None) => {
                    sqlx::query(
                        "UPDATE clients SET user_id = $3 WHERE tenant = $1 AND client_id = $2",
                    )
                    .bind(&self.tenant)
                    .bind(*client)
                    .bind(user)
                    .execute(&mut *self.tx)
                    .await?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO clients (tenant, client_id, last_seq, user_id) VALUES ($1, $2, 0, $3)",
                    )
                    .bind(&self.tenant)
                    .bind(*client)
                    .bind(user)
                    .execute(&mut *self.tx)
                    .await?;
                }
            }
        }
        Ok(None)
    }

    /// Claims an idempotency key for a body digest: `false` if it was claimed by another body.
    pub(crate) async fn claim_key(&mut self, key: &str, digest: &str) -> Result<bool, DbError> {
        let known: Option<String> = sqlx::query_scalar(
            "SELECT body_digest FROM idempotency_keys WHERE tenant = $1 AND idem_key = $2",
        )
        .bind(&self.tenant)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?;
        match known {
            Some(known) => Ok(known == digest),
            None => {
                sqlx::query("INSERT INTO idempotency_keys (tenant, idem_key, body_digest, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&self.tenant)
                    .bind(key)
                    .bind(digest)
                    .bind(to_i64(self.now_ms))
                    .execute(&mut *self.tx)
                    .await?;
                Ok(true)
            }
        }
    }

    /// Runs `push` in `tx` up to its commit. A refused push is rolled back and its outcome
    /// returned as `Err`; an applied one comes back uncommitted, so the backend can add its
    /// own statements (PostgreSQL's `pg_notify`) before it commits.
    pub(crate) async fn apply(
        tx: sqlx::Transaction<'static, B>,
        push: &Push<'_>,
    ) -> Result<Result<Applied<B>, PushOutcome>, DbError> {
        let (tenant, req) = (push.tenant, push.req);
        let mut ptx = PushTx::lock(tx, tenant).await?;
        if !ptx
            .claim_key(push.idempotency_key, push.body_digest)
            .await?
        {
            ptx.tx.rollback().await?;
            return Ok(Err(PushOutcome::KeyReused));
        }
        if let Some(client_id) = ptx.bind_clients(push.user, &push.clients()).await? {
            ptx.tx.rollback().await?;
            return Ok(Err(PushOutcome::ForeignClient { client_id }));
        }
        ptx.prefetch(req).await?;
        let bounds = Bounds::at(ptx.now_ms);
        match process_push_within(&mut ptx, req, push.rules, &bounds).await {
            Ok(response) => {
                let advanced = ptx.finish().await?;
                Ok(Ok(Applied {
                    ptx,
                    response,
                    advanced,
                }))
            }
            Err(PushError::BodyMismatch { op_id }) => {
                ptx.tx.rollback().await?;
                Ok(Err(PushOutcome::OpReused { op_id }))
            }
            Err(PushError::Storage(e)) => Err(e),
        }
    }

    /// Compacts the tenant in `tx` (see [`PushTx::compact`]) and commits.
    pub(crate) async fn compact_in(
        tx: sqlx::Transaction<'static, B>,
        tenant: &str,
        upto: u64,
    ) -> Result<CompactReport, DbError> {
        let mut ptx = PushTx::lock(tx, tenant).await?;
        let report = ptx.compact(upto).await?;
        ptx.tx.commit().await?;
        Ok(report)
    }

    /// Writes what the push left in memory — the clients' raised last seqs and the
    /// advanced head — before the commit; returns the head if it moved.
    pub(crate) async fn finish(&mut self) -> Result<Option<u64>, DbError> {
        for (client, seq) in std::mem::take(&mut self.raised_seqs) {
            sqlx::query(
                "INSERT INTO clients (tenant, client_id, last_seq) VALUES ($1, $2, $3)
                         ON CONFLICT (tenant, client_id) DO UPDATE SET last_seq = excluded.last_seq",
            )
            .bind(&self.tenant)
            .bind(&client)
            .bind(to_i64(seq))
            .execute(&mut *self.tx)
            .await?;
        }
        if self.head == self.start {
            return Ok(None);
        }
        sqlx::query("UPDATE tenants SET head = $2 WHERE tenant = $1")
            .bind(&self.tenant)
            .bind(to_i64(self.head))
            .execute(&mut *self.tx)
            .await?;
        Ok(Some(self.head))
    }

    /// Drops tombstones logged at or before `upto` and raises the horizon.
    pub(crate) async fn compact(&mut self, upto: u64) -> Result<CompactReport, DbError> {
        let upto = upto.min(self.head);
        let result =
            sqlx::query("DELETE FROM records WHERE tenant = $1 AND deleted = $2 AND version <= $3")
                .bind(&self.tenant)
                .bind(true)
                .bind(to_i64(upto))
                .execute(&mut *self.tx)
                .await?;
        let removed = B::rows_affected(&result);
        let horizon: i64 = sqlx::query_scalar("SELECT horizon FROM tenants WHERE tenant = $1")
            .bind(&self.tenant)
            .fetch_one(&mut *self.tx)
            .await?;
        let horizon = to_u64(horizon).max(upto);
        sqlx::query("UPDATE tenants SET horizon = $2 WHERE tenant = $1")
            .bind(&self.tenant)
            .bind(to_i64(horizon))
            .execute(&mut *self.tx)
            .await?;
        Ok(CompactReport { removed, horizon })
    }

    // The IN-list statements run unprepared (`persistent(false)`): their text changes with
    // the batch's size, and PostgreSQL, after five executions of a prepared one, may switch
    // to a generic plan that made pushes 2x slower at 8 clients, with stalls of 3 s
    // (ARCHITECTURE.md, "The prefetch on PostgreSQL"). Unprepared, each is planned with
    // its values.
    /// Loads what the apply rules will look up for `req` into the transaction's maps: one
    /// statement per table (records: per collection) instead of three lookups per mutation.
    pub(crate) async fn prefetch(&mut self, req: &PushRequest) -> Result<(), DbError> {
        let op_ids: Vec<&str> = req
            .mutations
            .iter()
            .map(|m| m.op_id.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut ops = HashMap::new();
        for chunk in op_ids.chunks(PREFETCH_CHUNK) {
            let select = "SELECT op_id, digest, outcome, version, code, message FROM ops";
            let (sql, args) = select_in::<B>(select, &self.tenant, None, "op_id", chunk)?;
            for row in sqlx::query_with(&sql, args)
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?
            {
                ops.insert(row.try_get::<String, _>("op_id")?, B::decode_op(&row)?);
            }
        }
        self.ops = Some(ops);

        let mut by_collection: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for m in &req.mutations {
            by_collection
                .entry(m.collection.as_str())
                .or_default()
                .insert(m.record_id.as_str());
        }
        for (collection, ids) in by_collection {
            let ids: Vec<&str> = ids.into_iter().collect();
            for id in &ids {
                self.records
                    .insert((collection.to_owned(), (*id).to_owned()), None);
            }
            for chunk in ids.chunks(PREFETCH_CHUNK) {
                let select = "SELECT collection, id, version, fields, deleted, hlc FROM records";
                let also = Some(("collection", collection));
                let (sql, args) = select_in::<B>(select, &self.tenant, also, "id", chunk)?;
                for row in sqlx::query_with(&sql, args)
                    .persistent(false)
                    .fetch_all(&mut *self.tx)
                    .await?
                {
                    let record = B::decode_record(&row)?;
                    let key = (record.collection.clone(), record.id.clone());
                    self.records.insert(key, Some(record));
                }
            }
        }

        let clients: Vec<&str> = req
            .mutations
            .iter()
            .map(|m| m.client_id.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for client in &clients {
            self.seqs.insert((*client).to_owned(), 0);
        }
        for chunk in clients.chunks(PREFETCH_CHUNK) {
            let select = "SELECT client_id, last_seq FROM clients";
            let (sql, args) = select_in::<B>(select, &self.tenant, None, "client_id", chunk)?;
            for row in sqlx::query_with(&sql, args)
                .persistent(false)
                .fetch_all(&mut *self.tx)
                .await?
            {
                let seq: i64 = row.try_get("last_seq")?;
                self.seqs
                    .insert(row.try_get::<String, _>("client_id")?, to_u64(seq));
            }
        }
        Ok(())
    }
}

impl<B: Backend> ApplyTx for PushTx<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> i64: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> bool: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> String: Encode<'q, B> + Decode<'q, B> + Type<B>,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> Option<i64>: Encode<'q, B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'a> &'a str: ColumnIndex<B::Row>,
    usize: ColumnIndex<B::Row>,
{
    type Error = DbError;

    async fn stored_op(&mut self, op_id: &str) -> Result<Option<StoredOp>, DbError> {
        if let Some(ops) = &self.ops {
            return Ok(ops.get(op_id).cloned());
        }
        let row = sqlx::query(
            "SELECT digest, outcome, version, code, message FROM ops WHERE tenant = $1 AND op_id = $2",
        )
        .bind(&self.tenant)
        .bind(op_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(B::decode_op).transpose()
    }

    async fn client_last_seq(&mut self, client_id: &str) -> Result<u64, DbError> {
        if let Some(seq) = self.seqs.get(client_id) {
            return Ok(*seq);
        }
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM clients WHERE tenant = $1 AND client_id = $2")
                .bind(&self.tenant)
                .bind(client_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        let seq = seq.map_or(0, to_u64);
        self.seqs.insert(client_id.to_owned(), seq);
        Ok(seq)
    }

    async fn record(&mut self, collection: &str, id: &str) -> Result<Option<Record>, DbError> {
        let key = (collection.to_owned(), id.to_owned());
        if let Some(known) = self.records.get(&key) {
            return Ok(known.clone());
        }
        let row = sqlx::query(
            "SELECT collection, id, version, fields, deleted, hlc FROM records
                     WHERE tenant = $1 AND collection = $2 AND id = $3",
        )
        .bind(&self.tenant)
        .bind(collection)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let record = row.as_ref().map(B::decode_record).transpose()?;
        self.records.insert(key, record.clone());
        Ok(record)
    }

    async fn write_record(&mut self, record: &Record) -> Result<u64, DbError> {
        self.head += 1;
        let fields =
            serde_json::to_string(&record.fields).map_err(|e| DbError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO records (tenant, collection, id, version, fields, deleted, hlc)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (tenant, collection, id) DO UPDATE SET
                       version = excluded.version, fields = excluded.fields,
                       deleted = excluded.deleted, hlc = excluded.hlc",
        )
        .bind(&self.tenant)
        .bind(&record.collection)
        .bind(&record.id)
        .bind(to_i64(self.head))
        .bind(fields)
        .bind(record.deleted)
        .bind(record.hlc.to_string())
        .execute(&mut *self.tx)
        .await?;
        let stored = Record {
            version: self.head,
            ..record.clone()
        };
        self.records
            .insert((record.collection.clone(), record.id.clone()), Some(stored));
        Ok(self.head)
    }

    async fn store_op(
        &mut self,
        m: &Mutation,
        digest: u64,
        outcome: &StoredOutcome,
    ) -> Result<(), DbError> {
        let (kind, version, code, message) = match outcome {
            StoredOutcome::Accepted { version } => ("accepted", Some(to_i64(*version)), None, None),
            StoredOutcome::Conflict => ("conflict", None, None, None),
            StoredOutcome::Rejected { code, message } => (
                "rejected",
                None,
                Some(code.as_str()),
                Some(message.as_str()),
            ),
        };
        sqlx::query(
            "INSERT INTO ops (tenant, op_id, digest, outcome, version, code, message, user_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&self.tenant)
        .bind(&m.op_id)
        .bind(digest as i64)
        .bind(kind)
        .bind(version)
        .bind(code)
        .bind(message)
        .bind(self.user.as_deref())
        .bind(to_i64(self.now_ms))
        .execute(&mut *self.tx)
        .await?;
        if let Some(ops) = &mut self.ops {
            ops.insert(
                m.op_id.clone(),
                StoredOp {
                    digest,
                    outcome: outcome.clone(),
                },
            );
        }
        // Written once per client by `finish`.
        self.seqs.insert(m.client_id.clone(), m.seq);
        self.raised_seqs.insert(m.client_id.clone(), m.seq);
        Ok(())
    }

    async fn cursor(&mut self) -> Result<u64, DbError> {
        Ok(self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::select_in;
    use sqlx::{Arguments as _, Database, Encode, Postgres, QueryBuilder, Sqlite, Type};

    /// The prefetch statement as `QueryBuilder` wrote it before the SQL became generic.
    fn built<B: Database>(also: Option<(&str, &str)>, keys: &[&str]) -> String
    where
        for<'a> String: Encode<'a, B> + Type<B>,
    {
        let mut q = QueryBuilder::<B>::new("SELECT x FROM t");
        q.push(" WHERE tenant = ").push_bind("t1".to_owned());
        if let Some((column, value)) = also {
            q.push(format!(" AND {column} = "))
                .push_bind(value.to_owned());
        }
        q.push(" AND id IN (");
        let mut list = q.separated(", ");
        for k in keys {
            list.push_bind(k.to_string());
        }
        q.push(")");
        q.sql().to_owned()
    }

    /// An optional `(column, value)` filter and the keys of the `IN` list.
    type Case<'a> = (Option<(&'a str, &'a str)>, &'a [&'a str]);

    #[test]
    fn select_in_writes_the_statements_query_builder_wrote() {
        let cases: [Case; 3] = [
            (None, &["a"]),
            (None, &["a", "b", "c"]),
            (Some(("collection", "todos")), &["a", "b"]),
        ];
        for (also, keys) in cases {
            let (sql, args) = select_in::<Sqlite>("SELECT x FROM t", "t1", also, "id", keys)
                .expect("sqlite statement");
            assert_eq!(sql, built::<Sqlite>(also, keys));
            assert_eq!(args.len(), 1 + usize::from(also.is_some()) + keys.len());
            let (sql, args) = select_in::<Postgres>("SELECT x FROM t", "t1", also, "id", keys)
                .expect("postgres statement");
            assert_eq!(sql, built::<Postgres>(also, keys));
            assert_eq!(args.len(), 1 + usize::from(also.is_some()) + keys.len());
        }
        let (sql, _) = select_in::<Postgres>(
            "SELECT x FROM t",
            "t1",
            Some(("collection", "todos")),
            "id",
            &["a", "b"],
        )
        .expect("postgres statement");
        assert_eq!(
            sql,
            "SELECT x FROM t WHERE tenant = $1 AND collection = $2 AND id IN ($3, $4)"
        );
        let (sql, _) = select_in::<Sqlite>("SELECT x FROM t", "t1", None, "id", &["a", "b"])
            .expect("sqlite statement");
        assert_eq!(sql, "SELECT x FROM t WHERE tenant = ? AND id IN (?, ?)");
    }
}
