//! The push (and compaction) transaction: what it caches, the prefetch, the push's steps
//! and its finish.

use super::statements::{by_key, insert_rows, select_in, Param, INSERT_CHUNK, PREFETCH_CHUNK};
use super::*;
use crate::validation::Rules;

/// One push (or compaction) transaction of one tenant, holding the tenant's lock.
pub(crate) struct PushTx<B: Database> {
    pub(crate) tx: sqlx::Transaction<'static, B>,
    pub(crate) tenant: String,
    /// The tenant's head as this transaction advances it.
    pub(crate) head: u64,
    /// The head when the transaction began.
    pub(crate) start: u64,
    /// Stored ops of the batch, once prefetched (an id not in it has none).
    pub(super) ops: Option<HashMap<String, StoredOp>>,
    /// Records as this transaction knows them (`None`: known not to exist).
    pub(super) records: HashMap<(String, String), Option<Record>>,
    /// Each known record's `readers` column (partial sync: who could read any version).
    pub(super) readers: HashMap<(String, String), Option<String>>,
    /// The push's rules, which say who reads what a write leaves (`None`: compaction).
    pub(super) rules: Option<Rules>,
    /// Clients' last applied seqs as this transaction knows them.
    pub(super) seqs: HashMap<String, u64>,
    /// Last seqs raised by this transaction, written by [`PushTx::finish`].
    pub(super) raised_seqs: BTreeMap<String, u64>,
    /// Records written by this transaction, not yet sent (the newest version per record):
    /// [`PushTx::finish`] sends them in multi-row statements.
    pub(super) unsent_records: BTreeMap<(String, String), UnsentRecord>,
    /// Ops stored by this transaction, not yet sent (see `unsent_records`).
    pub(super) unsent_ops: Vec<UnsentOp>,
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

/// A record row as [`PushTx::finish`] will write it.
pub(super) struct UnsentRecord {
    pub(super) version: i64,
    pub(super) fields: String,
    pub(super) deleted: bool,
    pub(super) hlc: String,
    pub(super) readers: Option<String>,
}

/// An op row as [`PushTx::finish`] will write it.
pub(super) struct UnsentOp {
    pub(super) op_id: String,
    pub(super) digest: i64,
    pub(super) outcome: &'static str,
    pub(super) version: Option<i64>,
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
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
    /// Creates the tenant row if needed and locks it, in one statement (an upsert that
    /// touches the row takes its row lock on PostgreSQL; on SQLite `BEGIN IMMEDIATE` already
    /// holds the write lock); pushes of a tenant serialise here.
    pub(crate) async fn lock(
        mut tx: sqlx::Transaction<'static, B>,
        tenant: &str,
    ) -> Result<Self, DbError> {
        let head: i64 = sqlx::query_scalar(
            "INSERT INTO tenants (tenant) VALUES ($1)
             ON CONFLICT (tenant) DO UPDATE SET head = tenants.head RETURNING head",
        )
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
            readers: HashMap::new(),
            rules: None,
            seqs: HashMap::new(),
            raised_seqs: BTreeMap::new(),
            unsent_records: BTreeMap::new(),
            unsent_ops: Vec::new(),
            user: None,
            now_ms: crate::db::now_ms(),
        })
    }

    /// Binds each client id to the pushing user on its first use; returns a client id
    /// already bound to another user (the push is then refused before any effect). The one
    /// read also loads the clients' last seqs for the apply rules.
    pub(crate) async fn bind_clients(
        &mut self,
        user: &str,
        clients: &[&str],
    ) -> Result<Option<String>, DbError> {
        self.user = Some(user.to_owned());
        let mut known: HashMap<String, Option<String>> = HashMap::new();
        let columns = "client_id, user_id, last_seq";
        for row in self
            .select_all_in(columns, "clients", None, "client_id", clients)
            .await?
        {
            let client: String = row.try_get("client_id")?;
            let seq: i64 = row.try_get("last_seq")?;
            self.seqs.insert(client.clone(), to_u64(seq));
            known.insert(client, row.try_get("user_id")?);
        }
        for client in clients {
            match known.get(*client) {
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
                    self.seqs.insert((*client).to_owned(), 0);
                }
            }
        }
        Ok(None)
    }

    /// Claims an idempotency key for a body digest: `false` if it was claimed by another body.
    /// The insert comes first: a new key (the usual case) costs one statement.
    pub(crate) async fn claim_key(&mut self, key: &str, digest: &str) -> Result<bool, DbError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant, idem_key, body_digest, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, idem_key) DO NOTHING",
        )
        .bind(&self.tenant)
        .bind(key)
        .bind(digest)
        .bind(to_i64(self.now_ms))
        .execute(&mut *self.tx)
        .await?;
        if B::rows_affected(&inserted) == 1 {
            return Ok(true);
        }
        let known: String = sqlx::query_scalar(
            "SELECT body_digest FROM idempotency_keys WHERE tenant = $1 AND idem_key = $2",
        )
        .bind(&self.tenant)
        .bind(key)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(known == digest)
    }

    /// Runs `push` in `tx` up to its commit. A refused push is rolled back and its outcome
    /// returned as `Err`; an applied one comes back uncommitted, so the backend can add its
    /// own statements (PostgreSQL's `pg_notify`) before it commits.
    pub(crate) async fn apply(
        tx: sqlx::Transaction<'static, B>,
        push: &Push<'_>,
    ) -> Result<Result<Applied<B>, PushOutcome>, DbError> {
        let (tenant, req) = (push.tenant, push.req.req());
        let mut ptx = PushTx::lock(tx, tenant).await?;
        ptx.rules = Some(push.rules.clone());
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
        match process_digested_push(&mut ptx, push.req, push.rules, &bounds).await {
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

    /// Writes what the push left in memory — its records and ops (a few multi-row
    /// statements instead of two statements per mutation), the clients' raised last seqs and
    /// the advanced head — before the commit; returns the head if it moved.
    pub(crate) async fn finish(&mut self) -> Result<Option<u64>, DbError> {
        self.send_records().await?;
        self.send_ops().await?;
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

    /// `<columns>` of every row of `<table>` with `tenant`, `also` and one of `keys`, asked
    /// [`PREFETCH_CHUNK`] keys at a time, each statement prepared and cached per connection
    /// (its text is one of ten, see [`select_in`]): one `IN (…)` list, or on PostgreSQL one
    /// whole-key lookup per key ([`by_key`]). A padded key may come back more than once.
    async fn select_all_in(
        &mut self,
        columns: &str,
        table: &str,
        also: Option<(&str, &str)>,
        key: &str,
        keys: &[&str],
    ) -> Result<Vec<B::Row>, DbError> {
        let mut rows = Vec::new();
        let select = format!("SELECT {columns} FROM {table}");
        for chunk in keys.chunks(PREFETCH_CHUNK) {
            let (sql, args) = if B::LOOKUPS_BY_KEY {
                by_key::<B>(columns, table, &self.tenant, also, key, chunk)?
            } else {
                select_in::<B>(&select, &self.tenant, also, key, chunk)?
            };
            rows.extend(
                sqlx::query_with(&sql, args)
                    .fetch_all(&mut *self.tx)
                    .await?,
            );
        }
        Ok(rows)
    }

    /// Runs `<head> (…), (…) <tail>` over `rows`, [`INSERT_CHUNK`] rows per statement,
    /// prepared and cached per connection like every other statement: the text depends only
    /// on the row count, so a steady push size reuses one prepared statement, and the
    /// driver's cache (100 statements per connection, least recently used out) bounds how
    /// many varied sizes keep. Unprepared, SQLite compiled each of them anew on every push,
    /// and PostgreSQL took an extra round trip (parse, then bind) under the tenant's lock.
    async fn insert_chunks(
        &mut self,
        head: &str,
        rows: &[Vec<Param<'_>>],
        tail: &str,
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let (sql, args) = insert_rows::<B>(head, chunk, tail)?;
            sqlx::query_with(&sql, args).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Upserts the unsent records, [`INSERT_CHUNK`] rows per statement. Each record appears
    /// once (its newest version): one statement may not upsert a row twice.
    async fn send_records(&mut self) -> Result<(), DbError> {
        let unsent = std::mem::take(&mut self.unsent_records);
        let tenant = self.tenant.clone();
        let rows: Vec<Vec<Param>> = unsent
            .iter()
            .map(|((collection, id), r)| {
                vec![
                    Param::Text(&tenant),
                    Param::Text(collection),
                    Param::Text(id),
                    Param::Int(r.version),
                    Param::Text(&r.fields),
                    Param::Bool(r.deleted),
                    Param::Text(&r.hlc),
                    Param::OptText(r.readers.as_deref()),
                ]
            })
            .collect();
        self.insert_chunks(
            "INSERT INTO records (tenant, collection, id, version, fields, deleted, hlc, readers) VALUES",
            &rows,
            "ON CONFLICT (tenant, collection, id) DO UPDATE SET
               version = excluded.version, fields = excluded.fields,
               deleted = excluded.deleted, hlc = excluded.hlc,
               readers = excluded.readers",
        )
        .await?;
        Ok(())
    }

    /// Inserts the unsent ops, [`INSERT_CHUNK`] rows per statement.
    pub(super) async fn send_ops(&mut self) -> Result<(), DbError> {
        let unsent = std::mem::take(&mut self.unsent_ops);
        let (tenant, user) = (self.tenant.clone(), self.user.clone());
        let now = to_i64(self.now_ms);
        let rows: Vec<Vec<Param>> = unsent
            .iter()
            .map(|op| {
                vec![
                    Param::Text(&tenant),
                    Param::Text(&op.op_id),
                    Param::Int(op.digest),
                    Param::Text(op.outcome),
                    Param::OptInt(op.version),
                    Param::OptText(op.code.as_deref()),
                    Param::OptText(op.message.as_deref()),
                    Param::OptText(user.as_deref()),
                    Param::Int(now),
                ]
            })
            .collect();
        self.insert_chunks(
            "INSERT INTO ops (tenant, op_id, digest, outcome, version, code, message, user_id, created_at) VALUES",
            &rows,
            "",
        )
        .await?;
        Ok(())
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

    // The IN-list statements are prepared and cached. On PostgreSQL, prepared IN lists once
    // made pushes 2x slower at 8 clients, with stalls of 3 s, when the server switched to a
    // generic plan after five executions (ARCHITECTURE.md, "The prefetch on PostgreSQL"):
    // the pool's connections run `plan_cache_mode = force_custom_plan` (postgres.rs), so
    // each execution is still planned with its values, as an unprepared statement was.
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
        let columns = "op_id, digest, outcome, version, code, message";
        for row in self
            .select_all_in(columns, "ops", None, "op_id", &op_ids)
            .await?
        {
            ops.insert(row.try_get::<String, _>("op_id")?, B::decode_op(&row)?);
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
            let columns = "collection, id, version, fields, deleted, hlc, readers";
            let also = Some(("collection", collection));
            let rows = self
                .select_all_in(columns, "records", also, "id", &ids)
                .await?;
            for row in rows {
                let record = B::decode_record(&row)?;
                let key = (record.collection.clone(), record.id.clone());
                self.readers.insert(key.clone(), row.try_get("readers")?);
                self.records.insert(key, Some(record));
            }
        }
        // The clients' last seqs were read by `bind_clients` (every client of the push).
        Ok(())
    }
}
