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
mod migrate;
mod open;
mod priorities;
mod pull;
mod refresh;
mod rollback;
mod sync;
mod types;
mod undo;
mod writes;

use crate::btree::CollectBTree;
use crate::changes::Changes;
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
pub use migrate::{data_too_new, Migrated, MigrationRefusal};
pub use rollback::Rollback;
pub use sync::PushSummary;
pub use types::*;
pub use undo::RecordImage;
pub use writes::Change;

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
    /// The records behind `changed_collections`, one by one (see [`Replica::take_changes`]).
    changes: Changes,
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
                .collect_btree_map(),
            outbox: dirty
                .outbox
                .into_iter()
                .map(|k| {
                    let v = self.outbox.get(&k).cloned();
                    (k, v)
                })
                .collect_btree_map(),
            conflicts: dirty
                .conflicts
                .into_iter()
                .map(|k| {
                    let v = self.conflicts.get(&k).cloned();
                    (k, v)
                })
                .collect_btree_map(),
            dead_letters: dirty
                .dead_letters
                .into_iter()
                .map(|k| {
                    let v = self.dead_letters.get(&k).cloned();
                    (k, v)
                })
                .collect_btree_map(),
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
        self.changes = Changes::default();
        std::mem::take(&mut self.changed_collections)
    }

    /// Like [`Replica::take_changed_collections`], with the changed records one by one, so
    /// live queries and indexes follow them instead of reading their collections again. A
    /// freshly opened replica reports every collection whole.
    pub fn take_changes(&mut self) -> Changes {
        self.changed_collections.clear();
        std::mem::take(&mut self.changes)
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
        fn order<'e>(e: &&'e OutboxEntry) -> (bool, Option<u64>, &'e str) {
            (
                e.sent.is_none(),
                e.sent.as_ref().map(|s| s.seq),
                e.entry_id.as_str(),
            )
        }
        crate::sorting::sort_stable_by(&mut list, |a, b| order(a).cmp(&order(b)));
        list
    }

    /// Every change to a record goes through here: it is persisted and its collection
    /// reported as changed.
    fn touch_record(&mut self, k: &Key) {
        self.dirty.records.insert(k.clone());
        self.changes.record(&k.0, &k.1);
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
