//! The replica's data: records, meta, conflicts, dead letters, what a commit persists, the
//! events it reports, and its configuration.

use super::*;

/// A record as this device sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalRecord {
    pub collection: String,
    pub id: String,
    /// The last server state this device knows; `None` for a record never synced.
    pub base: Option<Record>,
    /// What the app sees: the base with the pending local writes applied.
    pub state: State,
    /// The clock of the latest write to `state`, local or pulled.
    pub hlc: Hlc,
}

impl LocalRecord {
    /// The server version this view is based on (0: never synced).
    pub fn version(&self) -> u64 {
        self.base.as_ref().map_or(0, |b| b.version)
    }
}

/// Per-replica bookkeeping, persisted with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// This replica's writer id on the wire.
    pub client_id: String,
    /// The seq the next frozen entry takes.
    pub next_seq: u64,
    /// The pull cursor: every change up to here is folded in.
    pub cursor: u64,
    /// The latest clock stamp issued or observed.
    pub hlc: Hlc,
    pub last_synced_at_ms: Option<u64>,
    /// A full resync from cursor 0 is under way (the old cursor expired).
    pub resyncing: bool,
    /// The identity of the server history `cursor` belongs to (empty: not heard yet, or a
    /// server that predates epochs). See [`Replica::check_history`].
    #[serde(default)]
    pub epoch: String,
    /// The server lost history this replica held: the running resync rebases every record
    /// on what the server has and re-pushes what it lacks (see `replica/rollback.rs`).
    #[serde(default)]
    pub restoring: bool,
    /// The server's clock minus this device's, in ms, as last measured (0: never synced).
    /// Local stamps use the corrected time, so a device with a wrong clock still orders its
    /// writes as a person expects once it has synced.
    #[serde(default)]
    pub clock_offset_ms: i64,
    /// Whether `clock_offset_ms` was measured (a server sent its time at least once).
    #[serde(default)]
    pub clock_calibrated: bool,
    /// The view fingerprint of the last pulled page (partial sync), sent with each pull.
    #[serde(default)]
    pub view: String,
    /// The version of the app's record shapes the stored data is in (0: never migrated; see
    /// `replica/migrate.rs`). Pushes name it (`Ferry-Data-Version`).
    #[serde(default)]
    pub data_version: u32,
}

/// A local edit that met a different server state and needs a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictEntry {
    pub conflict_id: String,
    pub collection: String,
    pub record_id: String,
    pub policy: Policy,
    /// What both sides started from (`None`: the record was new on this device).
    pub base: Option<State>,
    pub local: State,
    pub local_hlc: Hlc,
    pub server: Record,
    /// The fields that clashed; empty when the whole record did (edit vs delete, review).
    pub fields: Vec<String>,
    pub created_at_ms: u64,
}

/// A mutation the server refused for good.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub letter_id: String,
    pub op_id: String,
    pub collection: String,
    pub record_id: String,
    pub op: OpKind,
    /// The record as the user wanted it; retry pushes this (or an edited version).
    pub desired: State,
    pub code: String,
    pub message: String,
    pub failed_at_ms: u64,
    pub attempts: u32,
}

/// Everything a store holds for one replica.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredState {
    pub meta: Option<Meta>,
    pub records: Vec<LocalRecord>,
    pub outbox: Vec<OutboxEntry>,
    pub conflicts: Vec<ConflictEntry>,
    pub dead_letters: Vec<DeadLetter>,
}

/// One atomic unit of persistence: `Some` puts, `None` deletes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    pub meta: Option<Meta>,
    pub records: BTreeMap<(String, String), Option<LocalRecord>>,
    pub outbox: BTreeMap<String, Option<OutboxEntry>>,
    pub conflicts: BTreeMap<String, Option<ConflictEntry>>,
    pub dead_letters: BTreeMap<String, Option<DeadLetter>>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.meta.is_none()
            && self.records.is_empty()
            && self.outbox.is_empty()
            && self.conflicts.is_empty()
            && self.dead_letters.is_empty()
    }
}

/// How a pending change ended or moved on. The engine reports these after they are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The server applied the entry's op.
    Applied {
        entry_id: String,
        op_id: String,
        version: u64,
    },
    /// The policy settled the entry against a newer server state.
    Settled {
        entry_id: String,
        collection: String,
        record_id: String,
        outcome: Outcome,
        into: Option<String>,
    },
    /// The entry went to the conflict inbox.
    Conflicted {
        entry_id: String,
        conflict_id: String,
    },
    /// The server refused the entry for good.
    DeadLettered {
        entry_id: String,
        letter_id: String,
        code: String,
    },
    /// The entry was folded into another unsent entry of the same record.
    Coalesced {
        entry_id: String,
        into: String,
    },
    /// Later writes undid the entry's change before it was sent.
    Cancelled {
        entry_id: String,
    },
    /// A person resolved a conflict; `into` is the entry that carries the choice.
    ConflictResolved {
        conflict_id: String,
        choice: &'static str,
        into: Option<String>,
    },
    /// A dead letter was sent again (`into`) or dropped.
    LetterRetried {
        letter_id: String,
        into: Option<String>,
    },
    LetterDiscarded {
        letter_id: String,
    },
    /// Stored data was inconsistent: the outbox has entries for `collection/record_id` but
    /// its record row was missing. The record was rebuilt from the entries (which are kept)
    /// and a full resync brings the server's state of it back (`replica/open.rs`).
    CorruptData {
        collection: String,
        record_id: String,
        detail: String,
    },
}

/// How a policy settled a pending change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Merged with the server's change; the merge goes out as a new entry.
    Merged,
    /// The local write was the later one (last-writer-wins); it goes out again.
    Kept,
    /// The server's state stands (last-writer-wins lost, or both sides agreed).
    Superseded,
}

/// What the replica needs to know about its collections.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub collections: BTreeMap<String, Policy>,
    pub batch_size: usize,
    pub pull_limit: u32,
    /// Appended to new entry ids, so replicas sharing one store (browser tabs) never
    /// name two entries alike.
    pub instance: String,
    /// Whether writes may rewrite an unsent entry. A replica that shares its store with a
    /// leader that may freeze entries at any time (a follower tab) sets this to `false`:
    /// each of its writes then appends a new entry and never touches an existing one.
    pub coalesce: bool,
    /// Each collection's priority on a poor network (unnamed: normal; see `crate::priority`).
    pub priorities: BTreeMap<String, crate::priority::Priority>,
}

impl ReplicaConfig {
    pub fn new(collections: impl IntoIterator<Item = (String, Policy)>) -> Self {
        ReplicaConfig {
            collections: collections.into_iter().collect_btree_map(),
            batch_size: DEFAULT_BATCH_SIZE,
            // The largest page the protocol allows: fewer round trips and commits.
            pull_limit: crate::protocol::limits::MAX_PULL_LIMIT,
            instance: String::new(),
            coalesce: true,
            priorities: BTreeMap::new(),
        }
    }
}
