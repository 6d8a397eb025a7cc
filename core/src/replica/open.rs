//! Opening a replica from what its store holds: the records and outbox it had, its clock
//! continued past every stamp it issued, and records the outbox needs repaired.

use super::*;

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
            .collect_btree_set();
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
                view: String::new(),
                data_version: 0,
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
            records: records_by_key(stored.records),
            outbox: BTreeMap::new(),
            entries_by_record: HashMap::new(),
            conflicts: stored
                .conflicts
                .into_iter()
                .map(|c| (c.conflict_id.clone(), c))
                .collect_btree_map(),
            dead_letters: stored
                .dead_letters
                .into_iter()
                .map(|d| (d.letter_id.clone(), d))
                .collect_btree_map(),
            dirty: Dirty {
                meta: fresh,
                ..Dirty::default()
            },
            events: Vec::new(),
            resync_seen: BTreeSet::new(),
            changes: {
                let mut changes = crate::changes::Changes::default();
                for c in &changed_collections {
                    changes.whole(c);
                }
                changes
            },
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
    /// nothing later panics on the missing row; the entries are kept. The base the row held
    /// is unknown, so the replica resyncs from the start, which brings the server's state of
    /// the record back and rebases the entries on it. Each such record is reported as
    /// [`Event::CorruptData`] (once the repair is durable). The repaired rows are saved with
    /// the next commit.
    fn repair_missing_records(&mut self) {
        let missing: Vec<Key> = self
            .entries_by_record
            .keys()
            .filter(|k| !self.records.contains_key(*k))
            .cloned()
            .collect();
        let mut repaired = false;
        for k in missing {
            let entries = self.entries_of(&k);
            let hlc = entries
                .iter()
                .map(|e| e.hlc.clone())
                .max()
                .unwrap_or_default();
            // An update means the record existed: its lost fields are unknown, but it was
            // live (folding onto a tombstone made the edit look like an edit of a deleted
            // record, which the resync then sent to the conflict inbox).
            let start = match entries.first().map(|e| e.op) {
                Some(crate::protocol::OpKind::Update) => {
                    State::live(crate::protocol::Fields::new())
                }
                _ => State::tombstone(),
            };
            let state = entries
                .iter()
                .fold(start, |s, e| apply_op(&s, e.op, &e.patch));
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
            self.events.push(Event::CorruptData {
                detail: format!(
                    "the record row of {}/{} was missing though the outbox holds changes to it; \
                     rebuilt from them, and resyncing from the server",
                    k.0, k.1
                ),
                collection: k.0,
                record_id: k.1,
            });
            repaired = true;
        }
        if repaired {
            self.on_cursor_expired();
        }
    }
}

/// The clock a reopened replica continues from: the latest of the stored meta's clock and
/// every stamp stored with the data (see [`Replica::tick`]); and, sorted, those this replica
/// issued itself (a clock pulled back never goes below one near it). Only wall time and
/// counter matter; the node stays this replica's.
/// Every stored record by key. The stored records come already in key order: `collect()`'s
/// sort finds the one run and bulk-builds the tree, several times faster than inserting one
/// by one at 10,000 records and more (see `crate::btree`), which is worth its code here.
/// Not inlined: `Replica::open` is inlined where an engine opens and where it re-reads its
/// store, and each inlined copy brought its own copy of that sort.
#[inline(never)]
fn records_by_key(records: Vec<LocalRecord>) -> BTreeMap<Key, LocalRecord> {
    records
        .into_iter()
        .map(|r| (key(&r.collection, &r.id), r))
        .collect()
}

pub(super) fn latest_stamp(meta_hlc: &Hlc, stored: &StoredState) -> (Hlc, Vec<(u64, u32)>) {
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
    crate::sorting::sort_stable_by(&mut own, Ord::cmp);
    own.dedup();
    let at = Hlc {
        wall_ms: latest.0,
        counter: latest.1,
        ..meta_hlc.clone()
    };
    (at, own)
}
