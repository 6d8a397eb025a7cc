//! The outbox: local writes waiting for the server, and how they are cut into batches.
//!
//! An entry is the net change of one record that the server has not acknowledged. Writes to
//! a record whose entry was not yet sent are coalesced into it (its body is recomputed as the
//! difference between the record's last server state and its local state), so a note typed
//! letter by letter offline goes out as one mutation. Once sent, an entry is frozen: its op
//! id, seq and body never change, so a retry is byte-for-byte the same request.

use crate::hlc::Hlc;
use crate::protocol::{fnv1a64, Fields, Mutation, OpKind};
use serde::{Deserialize, Serialize};

/// The default number of mutations in one push.
pub const DEFAULT_BATCH_SIZE: usize = 50;

/// The identity an entry takes when it is first sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentAs {
    pub op_id: String,
    pub client_id: String,
    pub seq: u64,
    pub base_version: u64,
}

/// One record's pending change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Local id: the clock of the write that created the entry, so ids sort in creation order.
    pub entry_id: String,
    pub collection: String,
    pub record_id: String,
    pub op: OpKind,
    pub patch: Fields,
    /// The clock of the latest write the entry carries (what last-writer-wins compares).
    pub hlc: Hlc,
    /// Set when first sent; from then on the entry is frozen.
    pub sent: Option<SentAs>,
    /// How many pushes carried this entry without a final answer.
    pub attempts: u32,
    pub created_at_ms: u64,
    pub last_error: Option<String>,
    /// How many local writes were coalesced into this entry.
    pub writes: u32,
}

impl OutboxEntry {
    pub fn is_sent(&self) -> bool {
        self.sent.is_some()
    }

    /// The wire form; only for a sent (frozen) entry.
    pub fn mutation(&self) -> Option<Mutation> {
        let sent = self.sent.as_ref()?;
        Some(Mutation {
            op_id: sent.op_id.clone(),
            client_id: sent.client_id.clone(),
            seq: sent.seq,
            collection: self.collection.clone(),
            record_id: self.record_id.clone(),
            op: self.op,
            base_version: sent.base_version,
            patch: if self.op == OpKind::Delete {
                Fields::new()
            } else {
                self.patch.clone()
            },
            hlc: self.hlc.clone(),
        })
    }
}

/// Picks the entries of the next push: first every frozen entry (a retry must repeat them),
/// then unsent entries in creation order, at most one per record and none for a record whose
/// earlier change is still unanswered, up to `max`.
pub fn select_batch<'a>(entries: impl Iterator<Item = &'a OutboxEntry>, max: usize) -> Vec<String> {
    let mut all: Vec<&OutboxEntry> = entries.collect();
    // Frozen entries keep their seq order; unsent ones go in creation order and get the
    // next seqs when frozen, so each client's seqs rise through the batch.
    let order = |e: &&OutboxEntry| {
        let sent = e.sent.as_ref().map(|s| (s.client_id.clone(), s.seq));
        (sent.is_none(), sent, e.entry_id.clone())
    };
    all.sort_by_key(order);
    let mut taken = Vec::new();
    let mut busy = std::collections::HashSet::new();
    for e in all {
        let key = (e.collection.as_str(), e.record_id.as_str());
        if !busy.insert(key) {
            continue;
        }
        if taken.len() < max || e.is_sent() {
            taken.push(e.entry_id.clone());
        }
    }
    taken
}

/// The `Idempotency-Key` of a batch: a digest of its ops and bodies, so the same batch
/// always carries the same key and a different batch never does.
pub fn idempotency_key(mutations: &[Mutation]) -> String {
    let mut bytes = Vec::new();
    for m in mutations {
        bytes.extend_from_slice(m.op_id.as_bytes());
        bytes.extend_from_slice(&m.body_digest().to_le_bytes());
    }
    format!("b-{:016x}-{}", fnv1a64(&bytes), mutations.len())
}
