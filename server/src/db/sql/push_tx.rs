//! The push (and compaction) transaction: what it caches, the prefetch, the push's steps
//! and its finish.

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
pub(super) const PREFETCH_CHUNK: usize = 500;

/// `<select> WHERE tenant = ? [AND <column> = ?] AND <key> IN (?, …)` and its arguments.
///
/// Each placeholder is written by the driver's arguments after its value is added, as sqlx's
/// `QueryBuilder` writes them (`?` on SQLite, `$n` on PostgreSQL). Not `QueryBuilder` itself:
/// its `build()` lends the arguments for the builder's own lifetime, which generic code cannot
/// shorten, so the builder could not be dropped after the query ran; here they move into it.
pub(super) fn select_in<'a, B: Database>(
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
            readers: HashMap::new(),
            rules: None,
            seqs: HashMap::new(),
            raised_seqs: BTreeMap::new(),
            user: None,
            now_ms: crate::db::now_ms(),
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
                let select =
                    "SELECT collection, id, version, fields, deleted, hlc, readers FROM records";
                let also = Some(("collection", collection));
                let (sql, args) = select_in::<B>(select, &self.tenant, also, "id", chunk)?;
                for row in sqlx::query_with(&sql, args)
                    .persistent(false)
                    .fetch_all(&mut *self.tx)
                    .await?
                {
                    let record = B::decode_record(&row)?;
                    let key = (record.collection.clone(), record.id.clone());
                    self.readers.insert(key.clone(), row.try_get("readers")?);
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
