//! [`PushTx`] as the core's [`ApplyTx`]: the apply rules' reads and writes, answered from
//! the transaction's caches where it can.

use super::push_tx::{UnsentOp, UnsentRecord};
use super::*;
use crate::permissions_filter::next_readers;

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
        // Without a prefetch, the table must also hold the ops this transaction stored.
        self.send_ops().await?;
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
            "SELECT collection, id, version, fields, deleted, hlc, readers FROM records
                     WHERE tenant = $1 AND collection = $2 AND id = $3",
        )
        .bind(&self.tenant)
        .bind(collection)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let record = row.as_ref().map(B::decode_record).transpose()?;
        let readers = match &row {
            Some(row) => row.try_get("readers")?,
            None => None,
        };
        self.readers.insert(key.clone(), readers);
        self.records.insert(key, record.clone());
        Ok(record)
    }

    async fn write_record(&mut self, record: &Record) -> Result<u64, DbError> {
        self.head += 1;
        let fields =
            serde_json::to_string(&record.fields).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let key = (record.collection.clone(), record.id.clone());
        // Who could read any version so far, this one included (partial sync's removals).
        let readers = self.rules.as_ref().map(|rules| {
            let previous = self.records.get(&key).cloned().flatten();
            let stored = self.readers.get(&key).cloned().flatten();
            next_readers(rules, previous.as_ref(), stored.as_deref(), record)
        });
        // Sent by `finish`, with the push's other records in a few statements.
        self.unsent_records.insert(
            key.clone(),
            UnsentRecord {
                version: to_i64(self.head),
                fields,
                deleted: record.deleted,
                hlc: record.hlc.to_string(),
                readers: readers.clone(),
            },
        );
        self.readers.insert(key, readers);
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
        // Sent by `finish`, with the push's other ops in a few statements.
        self.unsent_ops.push(UnsentOp {
            op_id: m.op_id.clone(),
            digest: digest as i64,
            outcome: kind,
            version,
            code: code.map(str::to_owned),
            message: message.map(str::to_owned),
        });
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
