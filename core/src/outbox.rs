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

/// How large one push may be: the server's advertised limits (or the protocol defaults
/// before it has spoken), narrowed by what this client learned from 413 answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most mutations in one push (unsent entries are capped by the replica's batch size too).
    pub max_mutations: usize,
    /// Largest encoded push body, in bytes.
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_mutations: crate::protocol::limits::MAX_MUTATIONS_PER_PUSH,
            max_bytes: crate::protocol::limits::MAX_PUSH_BYTES,
        }
    }
}

/// The envelope of a push body around its mutations (`{"client_id":…,"mutations":[…]}`),
/// with room to spare, so a batch sized by its mutations never crosses the byte limit.
pub const PUSH_ENVELOPE_BYTES: usize = 512;

/// What an unsent entry's mutation adds to a body beyond its patch and names: op id, client
/// id, seq, base version, stamp and the JSON keys (generous, so estimates never undershoot).
const MUTATION_OVERHEAD_BYTES: usize = 640;

impl OutboxEntry {
    /// The entry's encoded size in a push body: exact once frozen, an upper estimate before.
    pub fn encoded_size(&self) -> usize {
        match self.mutation() {
            Some(m) => serde_json::to_vec(&m).map_or(usize::MAX, |v| v.len() + 1),
            None => serde_json::to_vec(&self.patch)
                .map_or(usize::MAX, |v| v.len())
                .saturating_add(self.collection.len() + self.record_id.len())
                .saturating_add(MUTATION_OVERHEAD_BYTES),
        }
    }
}

/// The next push: which entries go, and which unsent entries can never go (even alone they
/// are larger than a push may be), so the caller dead-letters them instead of retrying.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub ids: Vec<String>,
    pub too_large: Vec<String>,
}

/// Picks the entries of the next push: first the frozen entries in seq order (a retry
/// repeats them; when they do not all fit, a prefix goes and no unsent entry is frozen behind
/// them, so each client's seqs still reach the server in order), then unsent entries in the
/// order given (the outbox's creation order, or `priority::candidates`), at most one per record and none for a record whose earlier change is still
/// unanswered, up to `max_unsent` — all within `limits`. The first frozen entry always goes,
/// even alone over the limit: only the server can say it refuses it (then it is a dead letter).
pub fn select_batch<'a>(
    entries: impl Iterator<Item = &'a OutboxEntry>,
    max_unsent: usize,
    limits: BatchLimits,
) -> Selection {
    let mut all: Vec<&OutboxEntry> = entries.collect();
    // Frozen entries keep their seq order; unsent ones keep the order they came in (creation
    // order from the outbox, or most urgent first from `priority::candidates`: the sort is
    // stable) and get the next seqs when frozen, so each client's seqs rise through the batch.
    // (Borrowed keys: `sort_by_key` would clone the client id twice per comparison.)
    fn order<'e>(e: &&'e OutboxEntry) -> (bool, Option<(&'e str, u64)>) {
        let sent = e.sent.as_ref().map(|s| (s.client_id.as_str(), s.seq));
        (sent.is_none(), sent)
    }
    crate::sorting::sort_stable_by(&mut all, |a, b| order(a).cmp(&order(b)));
    let budget = limits.max_bytes.saturating_sub(PUSH_ENVELOPE_BYTES).max(1);
    let max_mutations = limits.max_mutations.max(1);
    let mut selection = Selection::default();
    let mut bytes = 0usize;
    let mut unsent_taken = 0usize;
    let mut busy = std::collections::HashSet::new();
    for e in all {
        let key = (e.collection.as_str(), e.record_id.as_str());
        if !busy.insert(key) {
            continue;
        }
        let size = e.encoded_size();
        if !e.is_sent() {
            if size > budget {
                selection.too_large.push(e.entry_id.clone());
                continue;
            }
            if unsent_taken >= max_unsent {
                break;
            }
        }
        let fits = selection.ids.len() < max_mutations && bytes.saturating_add(size) <= budget;
        if !fits && !selection.ids.is_empty() {
            // Stop at the first that does not fit: a later frozen entry has a later seq, and
            // an unsent one would get a later seq still.
            break;
        }
        bytes = bytes.saturating_add(size);
        unsent_taken += usize::from(!e.is_sent());
        selection.ids.push(e.entry_id.clone());
    }
    selection
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
