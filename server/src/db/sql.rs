//! The SQL both backends share, written once as a macro and expanded per sqlx driver.
//!
//! The statements are portable (`$n` parameters, `ON CONFLICT`, `BOOLEAN`, `BIGINT`), so
//! SQLite and PostgreSQL run the very same queries; only how a transaction starts and how
//! the tenant row is locked differ, and those are the macro's arguments. [`PushTx`] is the
//! [`ferry_core::apply::ApplyTx`] the core's `process_push` runs on.
//!
//! A push transaction remembers what it read and wrote (records, clients' last seqs, ops), so
//! the apply rules' repeated lookups are answered from memory, and the clients' last seqs are
//! written once per client, by [`PushTx::finish`]. On SQLite, `PushTx::prefetch` (in
//! `sqlite.rs`) also fills those maps up front with one statement per table (per collection
//! for records). All of it happens inside the transaction that holds the tenant's
//! lock, so nothing else can change those rows meanwhile.

/// Expands the shared queries for one driver.
///
/// `$db`: the sqlx database type; `$conn`: its connection type; `$lock`: the statement that
/// reads (and on PostgreSQL row-locks) the tenant's head.
macro_rules! sql_store {
    ($db:ty, $conn:ty, $lock:literal) => {
        use ferry_core::apply::{ApplyTx, StoredOp, StoredOutcome};
        use ferry_core::protocol::{Mutation, PullResponse, Record};
        use std::collections::{BTreeMap, HashMap};
        use ferry_core::apply::{PullError, PullPage};
        use sqlx::Row as _;
        use $crate::db::{CompactReport, DbError};

        fn to_i64(n: u64) -> i64 {
            i64::try_from(n).unwrap_or(i64::MAX)
        }

        fn to_u64(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }

        /// One push (or compaction) transaction of one tenant, holding the tenant's lock.
        pub(crate) struct PushTx {
            pub(crate) tx: sqlx::Transaction<'static, $db>,
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

        impl PushTx {
            /// Creates the tenant row if needed and locks it; pushes of a tenant serialise here.
            pub(crate) async fn lock(mut tx: sqlx::Transaction<'static, $db>, tenant: &str) -> Result<Self, DbError> {
                sqlx::query("INSERT INTO tenants (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING")
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                let head: i64 = sqlx::query_scalar($lock).bind(tenant).fetch_one(&mut *tx).await?;
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
                    now_ms: $crate::db::now_ms(),
                })
            }

            /// Binds each client id to the pushing user on its first use; returns a client id
            /// already bound to another user (the push is then refused before any effect).
            pub(crate) async fn bind_clients(&mut self, user: &str, clients: &[&str]) -> Result<Option<String>, DbError> {
                self.user = Some(user.to_owned());
                for client in clients {
                    let row: Option<Option<String>> =
                        sqlx::query_scalar("SELECT user_id FROM clients WHERE tenant = $1 AND client_id = $2")
                            .bind(&self.tenant)
                            .bind(*client)
                            .fetch_optional(&mut *self.tx)
                            .await?;
                    match row {
                        Some(Some(owner)) if owner == user => {}
                        Some(Some(_)) => return Ok(Some((*client).to_owned())),
                        Some(None) => {
                            sqlx::query("UPDATE clients SET user_id = $3 WHERE tenant = $1 AND client_id = $2")
                                .bind(&self.tenant)
                                .bind(*client)
                                .bind(user)
                                .execute(&mut *self.tx)
                                .await?;
                        }
                        None => {
                            sqlx::query("INSERT INTO clients (tenant, client_id, last_seq, user_id) VALUES ($1, $2, 0, $3)")
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
                let known: Option<String> =
                    sqlx::query_scalar("SELECT body_digest FROM idempotency_keys WHERE tenant = $1 AND idem_key = $2")
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
                let removed = sqlx::query("DELETE FROM records WHERE tenant = $1 AND deleted = $2 AND version <= $3")
                    .bind(&self.tenant)
                    .bind(true)
                    .bind(to_i64(upto))
                    .execute(&mut *self.tx)
                    .await?
                    .rows_affected();
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
        }

        fn decode_record(row: &<$db as sqlx::Database>::Row) -> Result<Record, DbError> {
            let fields: String = row.try_get("fields")?;
            let hlc: String = row.try_get("hlc")?;
            Ok(Record {
                collection: row.try_get("collection")?,
                id: row.try_get("id")?,
                version: to_u64(row.try_get("version")?),
                fields: serde_json::from_str(&fields).map_err(|e| DbError::Corrupt(format!("record fields: {e}")))?,
                deleted: row.try_get("deleted")?,
                hlc: ferry_core::Hlc::parse(&hlc).map_err(DbError::Corrupt)?,
            })
        }

        fn decode_op(row: &<$db as sqlx::Database>::Row) -> Result<StoredOp, DbError> {
            let digest: i64 = row.try_get("digest")?;
            let kind: String = row.try_get("outcome")?;
            let outcome = match kind.as_str() {
                "accepted" => StoredOutcome::Accepted { version: to_u64(row.try_get::<Option<i64>, _>("version")?.unwrap_or(0)) },
                "conflict" => StoredOutcome::Conflict,
                "rejected" => StoredOutcome::Rejected {
                    code: row.try_get::<Option<String>, _>("code")?.unwrap_or_default(),
                    message: row.try_get::<Option<String>, _>("message")?.unwrap_or_default(),
                },
                other => return Err(DbError::Corrupt(format!("unknown op outcome `{other}`"))),
            };
            Ok(StoredOp { digest: digest as u64, outcome })
        }

        impl ApplyTx for PushTx {
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
                row.as_ref().map(decode_op).transpose()
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
                let record = row.as_ref().map(decode_record).transpose()?;
                self.records.insert(key, record.clone());
                Ok(record)
            }

            async fn write_record(&mut self, record: &Record) -> Result<u64, DbError> {
                self.head += 1;
                let fields = serde_json::to_string(&record.fields).map_err(|e| DbError::Corrupt(e.to_string()))?;
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
                let stored = Record { version: self.head, ..record.clone() };
                self.records.insert((record.collection.clone(), record.id.clone()), Some(stored));
                Ok(self.head)
            }

            async fn store_op(&mut self, m: &Mutation, digest: u64, outcome: &StoredOutcome) -> Result<(), DbError> {
                let (kind, version, code, message) = match outcome {
                    StoredOutcome::Accepted { version } => ("accepted", Some(to_i64(*version)), None, None),
                    StoredOutcome::Conflict => ("conflict", None, None, None),
                    StoredOutcome::Rejected { code, message } => ("rejected", None, Some(code.as_str()), Some(message.as_str())),
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
                    ops.insert(m.op_id.clone(), StoredOp { digest, outcome: outcome.clone() });
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

        /// The tenant's (head, horizon); (0, 0) for a tenant that never pushed.
        pub(crate) async fn head_of(conn: &mut $conn, tenant: &str) -> Result<(u64, u64), DbError> {
            let row = sqlx::query("SELECT head, horizon FROM tenants WHERE tenant = $1")
                .bind(tenant)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some(row) => Ok((to_u64(row.try_get("head")?), to_u64(row.try_get("horizon")?))),
                None => Ok((0, 0)),
            }
        }

        /// One page of changes after `cursor`: run it inside one read snapshot.
        pub(crate) async fn pull_in(
            conn: &mut $conn,
            tenant: &str,
            cursor: u64,
            limit: u32,
        ) -> Result<Result<PullResponse, PullError>, DbError> {
            let (head, horizon) = head_of(conn, tenant).await?;
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
            let changes = rows.iter().map(decode_record).collect::<Result<Vec<_>, _>>()?;
            let remaining = if changes.len() < limit as usize {
                0
            } else {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE tenant = $1 AND version > $2")
                    .bind(tenant)
                    .bind(to_i64(changes.last().map_or(cursor, |r| r.version)))
                    .fetch_one(&mut *conn)
                    .await?;
                to_u64(n)
            };
            Ok(Ok(page.answer(changes, remaining, head, horizon)))
        }

        /// Keys per `IN (…)` list: well under SQLite's limit on bound parameters.
        const PREFETCH_CHUNK: usize = 500;

        /// `<select> WHERE tenant = ? [AND <column> = ?] AND <key> IN (?, …)`.
        fn select_in<'a>(
            select: &str,
            tenant: &str,
            also: Option<(&str, &str)>,
            key: &str,
            keys: &[&str],
        ) -> sqlx::QueryBuilder<'a, $db> {
            let mut q = sqlx::QueryBuilder::new(select);
            q.push(" WHERE tenant = ").push_bind(tenant.to_owned());
            if let Some((column, value)) = also {
                q.push(format!(" AND {column} = "))
                    .push_bind(value.to_owned());
            }
            q.push(format!(" AND {key} IN ("));
            let mut list = q.separated(", ");
            for k in keys {
                list.push_bind(k.to_string());
            }
            q.push(")");
            q
        }

        // The IN-list statements run unprepared (`persistent(false)`): their text changes with
        // the batch's size, and PostgreSQL, after five executions of a prepared one, may switch
        // to a generic plan that made pushes 2x slower at 8 clients, with stalls of 3 s
        // (ARCHITECTURE.md, "The prefetch on PostgreSQL"). Unprepared, each is planned with
        // its values.
        impl PushTx {
            /// Loads what the apply rules will look up for `req` into the transaction's maps: one
            /// statement per table (records: per collection) instead of three lookups per mutation.
            pub(crate) async fn prefetch(&mut self, req: &ferry_core::protocol::PushRequest) -> Result<(), DbError> {
                let op_ids: Vec<&str> = req
                    .mutations
                    .iter()
                    .map(|m| m.op_id.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let mut ops = HashMap::new();
                for chunk in op_ids.chunks(PREFETCH_CHUNK) {
                    let select = "SELECT op_id, digest, outcome, version, code, message FROM ops";
                    let mut q = select_in(select, &self.tenant, None, "op_id", chunk);
                    for row in q.build().persistent(false).fetch_all(&mut *self.tx).await? {
                        ops.insert(row.try_get::<String, _>("op_id")?, decode_op(&row)?);
                    }
                }
                self.ops = Some(ops);

                let mut by_collection: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
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
                        let mut q = select_in(select, &self.tenant, also, "id", chunk);
                        for row in q.build().persistent(false).fetch_all(&mut *self.tx).await? {
                            let record = decode_record(&row)?;
                            let key = (record.collection.clone(), record.id.clone());
                            self.records.insert(key, Some(record));
                        }
                    }
                }

                let clients: Vec<&str> = req
                    .mutations
                    .iter()
                    .map(|m| m.client_id.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for client in &clients {
                    self.seqs.insert((*client).to_owned(), 0);
                }
                for chunk in clients.chunks(PREFETCH_CHUNK) {
                    let select = "SELECT client_id, last_seq FROM clients";
                    let mut q = select_in(select, &self.tenant, None, "client_id", chunk);
                    for row in q.build().persistent(false).fetch_all(&mut *self.tx).await? {
                        let seq: i64 = row.try_get("last_seq")?;
                        self.seqs
                            .insert(row.try_get::<String, _>("client_id")?, to_u64(seq));
                    }
                }
                Ok(())
            }
        }

        /// Marks every tenant whose head moved since its last mark with (`now_ms`, head).
        pub(crate) async fn mark_heads_in(conn: &mut $conn, now_ms: u64) -> Result<(), DbError> {
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
        pub(crate) async fn compaction_targets_in(conn: &mut $conn, cutoff_ms: u64) -> Result<Vec<(String, u64)>, DbError> {
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
        pub(crate) async fn drop_marks_in(conn: &mut $conn, tenant: &str, upto: u64) -> Result<(), DbError> {
            sqlx::query("DELETE FROM tenant_marks WHERE tenant = $1 AND head < $2")
                .bind(tenant)
                .bind(to_i64(upto))
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Deletes idempotency keys created before `keys_before` and ops stored before
        /// `ops_before` (ms since the Unix epoch); returns how many of each.
        pub(crate) async fn prune_in(conn: &mut $conn, keys_before: Option<u64>, ops_before: Option<u64>) -> Result<(u64, u64), DbError> {
            let mut pruned = (0, 0);
            if let Some(before) = keys_before {
                pruned.0 = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(to_i64(before))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            }
            if let Some(before) = ops_before {
                pruned.1 = sqlx::query("DELETE FROM ops WHERE created_at < $1")
                    .bind(to_i64(before))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            }
            Ok(pruned)
        }

        /// The database's epoch, created with `fresh` if it has none yet.
        pub(crate) async fn epoch_in(conn: &mut $conn, fresh: &str) -> Result<String, DbError> {
            sqlx::query("INSERT INTO server_meta (name, value) VALUES ('epoch', $1) ON CONFLICT (name) DO NOTHING")
                .bind(fresh)
                .execute(&mut *conn)
                .await?;
            Ok(sqlx::query_scalar("SELECT value FROM server_meta WHERE name = 'epoch'")
                .fetch_one(&mut *conn)
                .await?)
        }

        /// Replaces the database's epoch with `fresh`.
        pub(crate) async fn rotate_epoch_in(conn: &mut $conn, fresh: &str) -> Result<(), DbError> {
            sqlx::query("UPDATE server_meta SET value = $1 WHERE name = 'epoch'")
                .bind(fresh)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Applies the migrations not yet applied, inside the caller's transaction.
        pub(crate) async fn migrate_in(conn: &mut $conn) -> Result<Vec<i64>, DbError> {
            use $crate::db::schema::{CREATE_MIGRATIONS_TABLE, MIGRATIONS};
            sqlx::query(CREATE_MIGRATIONS_TABLE).execute(&mut *conn).await?;
            let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM ferry_migrations").fetch_all(&mut *conn).await?;
            let mut applied = Vec::new();
            for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
                for statement in m.statements {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                sqlx::query("INSERT INTO ferry_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(m.version)
                    .bind($crate::auth::now_secs().to_string())
                    .execute(&mut *conn)
                    .await?;
                applied.push(m.version);
            }
            Ok(applied)
        }
    };
}

pub(crate) use sql_store;
