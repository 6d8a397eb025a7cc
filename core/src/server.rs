//! An in-memory sync server built on the shared apply rules, for the simulation and tests.
//!
//! It keeps exactly what the SQL server keeps per tenant — records with their change
//! position, processed op ids, each client's last seq, the cursor and the compaction
//! horizon — so the simulation exercises the same rules the reference server runs.

use crate::apply::{process_push, ApplyTx, PushError, StoredOp, StoredOutcome, Validator};
use crate::protocol::{Mutation, PullResponse, PushRequest, PushResponse, Record};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

pub use crate::apply::PullError;

/// One op the server applied, in apply order: what the simulation checks ordering against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedOp {
    pub op_id: String,
    pub client_id: String,
    pub seq: u64,
}

/// Everything one tenant owns.
#[derive(Default, Debug, Clone)]
pub struct TenantState {
    records: HashMap<(String, String), (u64, Record)>,
    log: BTreeMap<u64, (String, String)>,
    ops: HashMap<String, StoredOp>,
    client_seq: HashMap<String, u64>,
    cursor: u64,
    horizon: u64,
    applied: Vec<AppliedOp>,
    /// The identity of this history (empty: not sent, like a server that predates epochs).
    epoch: String,
}

impl TenantState {
    /// The latest state of every record, tombstones included.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values().map(|(_, r)| r)
    }

    pub fn record(&self, collection: &str, id: &str) -> Option<&Record> {
        self.records
            .get(&(collection.to_owned(), id.to_owned()))
            .map(|(_, r)| r)
    }

    /// Every applied op, in the order it was applied.
    pub fn applied(&self) -> &[AppliedOp] {
        &self.applied
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The identity of this tenant's history, sent with every answer (empty: not sent).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Names this history; a restored or recreated server takes a new name.
    pub fn set_epoch(&mut self, epoch: impl Into<String>) {
        self.epoch = epoch.into();
    }

    /// The changes after `cursor`, oldest first, at most `limit` of them.
    pub fn pull(&self, cursor: u64, limit: u32) -> Result<PullResponse, PullError> {
        self.pull_filtered(cursor, limit, &[])
    }

    /// A pull of only the named collections (none named: all), as `collections=` asks
    /// (PROTOCOL.md §4): the log in order with the other collections' rows passed over.
    pub fn pull_filtered(
        &self,
        cursor: u64,
        limit: u32,
        collections: &[String],
    ) -> Result<PullResponse, PullError> {
        let page = crate::apply::PullPage::new(cursor, limit);
        page.check(self.horizon)?;
        let mut after = self.log.range(cursor + 1..).filter(|(_, (collection, _))| {
            collections.is_empty() || collections.contains(collection)
        });
        let changes: Vec<Record> = after
            .by_ref()
            .take(page.limit as usize)
            .map(|(_, key)| self.records[key].1.clone())
            .collect();
        let remaining = after.count() as u64;
        let mut answer = page.answer(changes, remaining, self.cursor, self.horizon);
        answer.epoch = self.epoch.clone();
        Ok(answer)
    }

    /// Drops tombstones logged at or before `upto`; pulls from older cursors then expire.
    pub fn compact(&mut self, upto: u64) {
        let upto = upto.min(self.cursor);
        let dead: Vec<u64> = self
            .log
            .range(..=upto)
            .filter(|(_, key)| self.records[*key].1.deleted)
            .map(|(pos, _)| *pos)
            .collect();
        for pos in dead {
            if let Some(key) = self.log.remove(&pos) {
                self.records.remove(&key);
            }
        }
        self.horizon = self.horizon.max(upto);
    }
}

impl ApplyTx for TenantState {
    type Error = Infallible;

    async fn stored_op(&mut self, op_id: &str) -> Result<Option<StoredOp>, Infallible> {
        Ok(self.ops.get(op_id).cloned())
    }

    async fn client_last_seq(&mut self, client_id: &str) -> Result<u64, Infallible> {
        Ok(self.client_seq.get(client_id).copied().unwrap_or(0))
    }

    async fn record(&mut self, collection: &str, id: &str) -> Result<Option<Record>, Infallible> {
        Ok(TenantState::record(self, collection, id).cloned())
    }

    async fn write_record(&mut self, record: &Record) -> Result<u64, Infallible> {
        self.cursor += 1;
        let record = &Record {
            version: self.cursor,
            ..record.clone()
        };
        let key = (record.collection.clone(), record.id.clone());
        if let Some((old_pos, _)) = self.records.get(&key) {
            self.log.remove(old_pos);
        }
        self.log.insert(self.cursor, key.clone());
        self.records.insert(key, (self.cursor, record.clone()));
        Ok(self.cursor)
    }

    async fn store_op(
        &mut self,
        m: &Mutation,
        digest: u64,
        outcome: &StoredOutcome,
    ) -> Result<(), Infallible> {
        self.ops.insert(
            m.op_id.clone(),
            StoredOp {
                digest,
                outcome: outcome.clone(),
            },
        );
        self.client_seq.insert(m.client_id.clone(), m.seq);
        if matches!(outcome, StoredOutcome::Accepted { .. }) {
            self.applied.push(AppliedOp {
                op_id: m.op_id.clone(),
                client_id: m.client_id.clone(),
                seq: m.seq,
            });
        }
        Ok(())
    }

    async fn cursor(&mut self) -> Result<u64, Infallible> {
        Ok(self.cursor)
    }
}

/// A multi-tenant in-memory server.
#[derive(Default)]
pub struct MemoryServer {
    tenants: HashMap<String, TenantState>,
}

impl MemoryServer {
    pub fn tenant(&self, tenant: &str) -> Option<&TenantState> {
        self.tenants.get(tenant)
    }

    pub fn tenant_mut(&mut self, tenant: &str) -> &mut TenantState {
        self.tenants.entry(tenant.to_owned()).or_default()
    }

    /// Applies a push for `tenant`; the future is always ready (no IO).
    pub fn push(
        &mut self,
        tenant: &str,
        req: &PushRequest,
        validator: &dyn Validator,
    ) -> Result<PushResponse, PushError<Infallible>> {
        let state = self.tenants.entry(tenant.to_owned()).or_default();
        // Work on a copy so a refused push leaves no trace, like a rolled-back transaction.
        let mut tx = state.clone();
        let result = crate::engine::block_on(process_push(&mut tx, req, validator));
        if result.is_ok() {
            *state = tx;
        }
        result.map(|resp| PushResponse {
            epoch: state.epoch.clone(),
            ..resp
        })
    }

    /// Puts a tenant back to an earlier copy of its state, as restoring a backup does: every
    /// change since is lost. `epoch` names the restored history (the server's duty: a
    /// restore must not keep the name of the history it replaced).
    pub fn restore(&mut self, tenant: &str, mut snapshot: TenantState, epoch: impl Into<String>) {
        snapshot.epoch = epoch.into();
        self.tenants.insert(tenant.to_owned(), snapshot);
    }

    pub fn pull(&self, tenant: &str, cursor: u64, limit: u32) -> Result<PullResponse, PullError> {
        self.pull_filtered(tenant, cursor, limit, &[])
    }

    /// [`TenantState::pull_filtered`] of a tenant.
    pub fn pull_filtered(
        &self,
        tenant: &str,
        cursor: u64,
        limit: u32,
        collections: &[String],
    ) -> Result<PullResponse, PullError> {
        match self.tenants.get(tenant) {
            Some(t) => t.pull_filtered(cursor, limit, collections),
            None => Ok(PullResponse::default()),
        }
    }
}
