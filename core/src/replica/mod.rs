//! The replica: one device's records, outbox, conflict inbox and dead letters, in memory.
//!
//! It is the synchronous heart of the client. Local writes change it at once (so the UI sees
//! them in the same tick); server answers and pulled pages are folded in by the policies.
//! Every change marks what must be persisted; [`Replica::take_writes`] hands that over as
//! one [`WriteBatch`] for the store to commit atomically. No IO and no clock: callers pass
//! `now_ms`.

mod clock;
mod inbox;
mod limits;
mod rollback;
mod sync;
mod writes;

use crate::hlc::Hlc;
use crate::outbox::{OutboxEntry, DEFAULT_BATCH_SIZE};
use crate::policy::{Policy, State};
use crate::protocol::{Fields, OpKind, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use clock::CLOCK_RECALIBRATE_MS;
pub use inbox::Choice;
use limits::PushLimits;
pub use limits::{TooLarge, TOO_LARGE};
pub use rollback::Rollback;
pub use sync::PushSummary;
pub use writes::Change;

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
}

impl ReplicaConfig {
    pub fn new(collections: impl IntoIterator<Item = (String, Policy)>) -> Self {
        ReplicaConfig {
            collections: collections.into_iter().collect(),
            batch_size: DEFAULT_BATCH_SIZE,
            // The largest page the protocol allows: fewer round trips and commits.
            pull_limit: crate::protocol::limits::MAX_PULL_LIMIT,
            instance: String::new(),
            coalesce: true,
        }
    }
}

type Key = (String, String);

/// One device's synchronized state.
pub struct Replica {
    config: ReplicaConfig,
    meta: Meta,
    records: BTreeMap<Key, LocalRecord>,
    outbox: BTreeMap<String, OutboxEntry>,
    entries_by_record: HashMap<Key, Vec<String>>,
    conflicts: BTreeMap<String, ConflictEntry>,
    dead_letters: BTreeMap<String, DeadLetter>,
    dirty: Dirty,
    events: Vec<Event>,
    resync_seen: BTreeSet<Key>,
    /// Collections whose records changed (view or base) since the last
    /// [`Replica::take_changed_collections`].
    changed_collections: BTreeSet<String>,
    /// How many outbox entries are sent (frozen): kept as entries come, go and are sent, so
    /// the sync state's `inFlight` does not walk the outbox on every write.
    sent_entries: usize,
    /// How large a push may be (see `replica/limits.rs`); not persisted: the server
    /// advertises it again in every answer.
    push_limits: PushLimits,
    /// The stamps this replica issued, as stored when it opened (sorted), and the latest it
    /// issued since: a clock pulled back to the bound never goes below one of them near the
    /// bound, so no stamp is issued twice (see `replica/clock.rs`).
    own_stamps: Vec<(u64, u32)>,
    own_floor: (u64, u32),
}

#[derive(Default)]
struct Dirty {
    meta: bool,
    records: BTreeSet<Key>,
    outbox: BTreeSet<String>,
    conflicts: BTreeSet<String>,
    dead_letters: BTreeSet<String>,
}

fn key(collection: &str, id: &str) -> Key {
    (collection.to_owned(), id.to_owned())
}

impl Replica {
    /// Rebuilds a replica from what its store holds; `new_client_id` names a fresh one.
    pub fn open(
        stored: StoredState,
        config: ReplicaConfig,
        new_client_id: impl FnOnce() -> String,
    ) -> Replica {
        let fresh = stored.meta.is_none();
        let stored_meta_hlc = stored
            .meta
            .as_ref()
            .map(|m| m.hlc.clone())
            .unwrap_or_default();
        let (latest, own_stamps) = latest_stamp(&stored_meta_hlc, &stored);
        // A replica just opened is new to whoever watches it: every collection counts as changed.
        let changed_collections: BTreeSet<String> = config
            .collections
            .keys()
            .cloned()
            .chain(stored.records.iter().map(|r| r.collection.clone()))
            .collect();
        let mut meta = stored.meta.unwrap_or_else(|| {
            let client_id = new_client_id();
            Meta {
                hlc: Hlc {
                    node: client_id.clone(),
                    ..Hlc::default()
                },
                client_id,
                next_seq: 1,
                cursor: 0,
                last_synced_at_ms: None,
                resyncing: false,
                epoch: String::new(),
                restoring: false,
                clock_offset_ms: 0,
                clock_calibrated: false,
            }
        });
        if meta.resyncing {
            // The pages seen before a restart are not remembered: start the resync over.
            meta.cursor = 0;
        }
        meta.hlc.wall_ms = latest.wall_ms;
        meta.hlc.counter = latest.counter;
        let mut replica = Replica {
            config,
            meta,
            records: stored
                .records
                .into_iter()
                .map(|r| (key(&r.collection, &r.id), r))
                .collect(),
            outbox: BTreeMap::new(),
            entries_by_record: HashMap::new(),
            conflicts: stored
                .conflicts
                .into_iter()
                .map(|c| (c.conflict_id.clone(), c))
                .collect(),
            dead_letters: stored
                .dead_letters
                .into_iter()
                .map(|d| (d.letter_id.clone(), d))
                .collect(),
            dirty: Dirty {
                meta: fresh,
                ..Dirty::default()
            },
            events: Vec::new(),
            resync_seen: BTreeSet::new(),
            changed_collections,
            sent_entries: 0,
            push_limits: PushLimits::default(),
            own_stamps,
            own_floor: (0, 0),
        };
        for entry in stored.outbox {
            replica.insert_entry(entry);
        }
        // Loaded entries are what the store holds: nothing to save. (Marking them unsaved
        // made a reloaded follower tab look busy forever, so it could never take over.)
        replica.dirty.outbox.clear();
        replica.repair_missing_records();
        replica
    }

    /// Outbox entries whose record row is missing (storage lost it, or it was tampered with)
    /// get their record back as the entries describe it, so the writes stay visible and
    /// nothing later panics on the missing row. The repaired rows are saved with the next
    /// commit.
    fn repair_missing_records(&mut self) {
        let missing: Vec<Key> = self
            .entries_by_record
            .keys()
            .filter(|k| !self.records.contains_key(*k))
            .cloned()
            .collect();
        for k in missing {
            let entries = self.entries_of(&k);
            let hlc = entries
                .iter()
                .map(|e| e.hlc.clone())
                .max()
                .unwrap_or_default();
            let state = entries
                .iter()
                .fold(State::tombstone(), |s, e| apply_op(&s, e.op, &e.patch));
            self.records.insert(
                k.clone(),
                LocalRecord {
                    collection: k.0.clone(),
                    id: k.1.clone(),
                    base: None,
                    state,
                    hlc,
                },
            );
            self.touch_record(&k);
        }
    }

    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn client_id(&self) -> &str {
        &self.meta.client_id
    }

    pub fn cursor(&self) -> u64 {
        self.meta.cursor
    }

    pub fn policy(&self, collection: &str) -> Policy {
        self.config
            .collections
            .get(collection)
            .copied()
            .unwrap_or_default()
    }

    /// The record as the app sees it, tombstones included.
    pub fn record(&self, collection: &str, id: &str) -> Option<&LocalRecord> {
        self.records.get(&key(collection, id))
    }

    /// Every record of a collection that is not deleted, in id order.
    pub fn live_records<'a>(
        &'a self,
        collection: &'a str,
    ) -> impl Iterator<Item = &'a LocalRecord> + 'a {
        self.records
            .range(key(collection, "")..)
            .take_while(move |(k, _)| k.0 == collection)
            .map(|(_, r)| r)
            .filter(|r| !r.state.deleted)
    }

    /// Every record this device holds, tombstones included.
    pub fn all_records(&self) -> impl Iterator<Item = &LocalRecord> {
        self.records.values()
    }

    pub fn outbox(&self) -> impl Iterator<Item = &OutboxEntry> {
        self.outbox.values()
    }

    pub fn outbox_depth(&self) -> usize {
        self.outbox.len()
    }

    /// How many entries were sent and still wait for a final answer.
    pub fn in_flight(&self) -> usize {
        self.sent_entries
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &ConflictEntry> {
        self.conflicts.values()
    }

    pub fn dead_letters(&self) -> impl Iterator<Item = &DeadLetter> {
        self.dead_letters.values()
    }

    /// Hands over what changed since the last call, for one atomic commit.
    pub fn take_writes(&mut self) -> WriteBatch {
        let dirty = std::mem::take(&mut self.dirty);
        WriteBatch {
            meta: dirty.meta.then(|| self.meta.clone()),
            records: dirty
                .records
                .into_iter()
                .map(|k| {
                    let v = self.records.get(&k).cloned();
                    (k, v)
                })
                .collect(),
            outbox: dirty
                .outbox
                .into_iter()
                .map(|k| {
                    let v = self.outbox.get(&k).cloned();
                    (k, v)
                })
                .collect(),
            conflicts: dirty
                .conflicts
                .into_iter()
                .map(|k| {
                    let v = self.conflicts.get(&k).cloned();
                    (k, v)
                })
                .collect(),
            dead_letters: dirty
                .dead_letters
                .into_iter()
                .map(|k| {
                    let v = self.dead_letters.get(&k).cloned();
                    (k, v)
                })
                .collect(),
        }
    }

    /// Whether anything changed since the last [`Replica::take_writes`].
    pub fn has_unsaved_changes(&self) -> bool {
        let d = &self.dirty;
        d.meta
            || !d.records.is_empty()
            || !d.outbox.is_empty()
            || !d.conflicts.is_empty()
            || !d.dead_letters.is_empty()
    }

    /// The collections whose records changed since the last call — by local writes, pulls,
    /// acks, settles, conflict and dead-letter actions, or a resync dropping records — so a
    /// UI recomputes only the views of those. A freshly opened replica reports every
    /// configured collection (and every collection it holds records of).
    ///
    /// Unlike [`Replica::take_events`] this is about what the replica shows now, committed
    /// or not, and it covers pulled records too.
    pub fn take_changed_collections(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.changed_collections)
    }

    /// The collections changed since the last [`Replica::take_changed_collections`].
    pub fn changed_collections(&self) -> &BTreeSet<String> {
        &self.changed_collections
    }

    /// The events since the last call. Report them only once their batch is committed.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn insert_entry(&mut self, entry: OutboxEntry) {
        self.sent_entries += usize::from(entry.is_sent());
        let k = key(&entry.collection, &entry.record_id);
        let ids = self.entries_by_record.entry(k).or_default();
        if !ids.contains(&entry.entry_id) {
            ids.push(entry.entry_id.clone());
        }
        self.dirty.outbox.insert(entry.entry_id.clone());
        if let Some(replaced) = self.outbox.insert(entry.entry_id.clone(), entry) {
            self.sent_entries -= usize::from(replaced.is_sent());
        }
    }

    fn remove_entry(&mut self, entry_id: &str) -> Option<OutboxEntry> {
        let entry = self.outbox.remove(entry_id)?;
        self.sent_entries -= usize::from(entry.is_sent());
        // The entry's id and stamp leave the store with it: save the clock instead (see
        // `tick`), or a restart could hand out the same id or an older stamp again.
        self.touch_meta();
        let k = key(&entry.collection, &entry.record_id);
        if let Some(ids) = self.entries_by_record.get_mut(&k) {
            ids.retain(|id| id != entry_id);
            if ids.is_empty() {
                self.entries_by_record.remove(&k);
            }
        }
        self.dirty.outbox.insert(entry_id.to_owned());
        Some(entry)
    }

    /// The entries of one record, frozen ones first (in seq order), then the unsent one.
    fn entries_of(&self, k: &Key) -> Vec<&OutboxEntry> {
        let mut list: Vec<&OutboxEntry> = self
            .entries_by_record
            .get(k)
            .into_iter()
            .flatten()
            .filter_map(|id| self.outbox.get(id))
            .collect();
        list.sort_by_key(|e| {
            (
                e.sent.is_none(),
                e.sent.as_ref().map(|s| s.seq),
                e.entry_id.clone(),
            )
        });
        list
    }

    /// Every change to a record goes through here: it is persisted and its collection
    /// reported as changed.
    fn touch_record(&mut self, k: &Key) {
        self.dirty.records.insert(k.clone());
        if !self.changed_collections.contains(&k.0) {
            self.changed_collections.insert(k.0.clone());
        }
    }

    fn touch_meta(&mut self) {
        self.dirty.meta = true;
    }

    /// Switches between leader (coalescing) and follower (append-only) writing.
    pub fn set_coalesce(&mut self, coalesce: bool) {
        self.config.coalesce = coalesce;
    }

    /// The next local stamp. The meta row is NOT marked for saving: every stamp that matters
    /// after a restart is stored with what it stamped (record, outbox entry and its id,
    /// conflict), and [`Replica::open`] moves the clock past all of them. So a local write
    /// commits its record and outbox entry only, with no meta row.
    fn tick(&mut self, now_ms: u64) -> Hlc {
        let now = self.corrected_now(now_ms);
        self.bound_clock(now);
        self.meta.hlc = Hlc::tick(&self.meta.hlc, now, &self.meta.client_id);
        self.own_floor = (self.meta.hlc.wall_ms, self.meta.hlc.counter);
        self.meta.hlc.clone()
    }
}

/// The clock a reopened replica continues from: the latest of the stored meta's clock and
/// every stamp stored with the data (see [`Replica::tick`]); and, sorted, those this replica
/// issued itself (a clock pulled back never goes below one near it). Only wall time and
/// counter matter; the node stays this replica's.
fn latest_stamp(meta_hlc: &Hlc, stored: &StoredState) -> (Hlc, Vec<(u64, u32)>) {
    // Compared as (wall, counter) pairs: no stamp is copied (a reopen walks every record).
    let entry_ids: Vec<Hlc> = stored
        .outbox
        .iter()
        .filter_map(|e| Hlc::parse(&e.entry_id).ok())
        .collect();
    let stamps = stored
        .records
        .iter()
        .map(|r| &r.hlc)
        .chain(stored.outbox.iter().map(|e| &e.hlc))
        .chain(entry_ids.iter())
        .chain(stored.conflicts.iter().map(|c| &c.local_hlc));
    let mut latest = (meta_hlc.wall_ms, meta_hlc.counter);
    // Pulled stamps count too: a stamp far ahead (another device's wrong clock) is pulled
    // back by the clock bound at the next local stamp once calibrated (`replica/clock.rs`).
    let mut own = vec![latest];
    for stamp in stamps {
        latest = latest.max((stamp.wall_ms, stamp.counter));
        // (An entry id carries the tab instance after the node, hence `starts_with`.)
        if stamp.node.starts_with(meta_hlc.node.as_str()) {
            own.push((stamp.wall_ms, stamp.counter));
        }
    }
    own.sort_unstable();
    own.dedup();
    let at = Hlc {
        wall_ms: latest.0,
        counter: latest.1,
        ..meta_hlc.clone()
    };
    (at, own)
}

/// Applies one op's effect to a state, as the server does.
pub(crate) fn apply_op(state: &State, op: OpKind, patch: &Fields) -> State {
    match op {
        OpKind::Delete => State::tombstone(),
        OpKind::Create => {
            let mut fields = Fields::new();
            crate::apply::apply_patch(&mut fields, patch);
            State::live(fields)
        }
        OpKind::Update => {
            let mut next = state.clone();
            crate::apply::apply_patch(&mut next.fields, patch);
            next
        }
    }
}
