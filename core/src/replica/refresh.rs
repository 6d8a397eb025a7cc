//! Following another writer's commits by the keys it touched, instead of reopening from
//! everything stored. A tab that did not commit a change learns from the committing tab which
//! records its commits wrote ([`crate::engine::Committed`]); it then re-reads only those
//! records, plus the small stores that hold pending work (meta, outbox, conflicts, dead
//! letters), and takes them in as [`Replica::open`] would have. Its cost follows what the
//! other tab changed, not what is stored (a full reopen at 100,000 records read and decoded
//! every row and re-ran every live query, per commit of the other tab).
//!
//! The result equals a reopen from the store: every record the other writer did not touch is
//! what this replica already held (its own commits stored exactly that, and a stored base
//! newer than the one it wrote only comes from a commit that names the record). The
//! simulation checks the equality after every refresh of a follower tab.

use super::*;
use std::collections::BTreeSet;

impl Replica {
    /// Takes in what another writer committed: `stored` holds the stored meta, outbox,
    /// conflicts and dead letters whole, and of the records those of `keys` that exist (a
    /// key without a stored record was deleted). Only for a replica without unsaved
    /// changes, like a reopen.
    ///
    /// Returns the records the outbox read names that this replica does not hold: the store
    /// moved on past the notice (the other writer committed again and has not said so yet —
    /// in the browser a tab announces a commit only after it finished, and a sync cycle only
    /// at its end). The caller reads those records too ([`Replica::take_in_records`]);
    /// repairing them from their entries, as a reopen does for a row truly missing, would
    /// invent records and leave unsaved changes behind.
    pub fn refresh(
        &mut self,
        stored: StoredState,
        keys: &BTreeSet<(String, String)>,
    ) -> BTreeSet<(String, String)> {
        let (latest, own) = super::open::latest_stamp(
            &stored
                .meta
                .as_ref()
                .map(|m| m.hlc.clone())
                .unwrap_or_default(),
            &stored,
        );
        if let Some(mut meta) = stored.meta {
            if meta.resyncing {
                // As a reopen does: a resync's pages are not remembered across a reload.
                meta.cursor = 0;
            }
            // Never behind the clock this replica already reached (stamps it holds in
            // records the other writer did not touch are not re-read here).
            let at = (latest.wall_ms, latest.counter)
                .max((self.meta.hlc.wall_ms, self.meta.hlc.counter));
            meta.hlc.wall_ms = at.0;
            meta.hlc.counter = at.1;
            self.meta = meta;
        }
        self.replace_records(stored.records, keys);
        // Records whose pending entries came or went change how they show (pending or not).
        let pending_before: Vec<Key> = self.entries_by_record.keys().cloned().collect();
        self.outbox.clear();
        self.entries_by_record.clear();
        self.sent_entries = 0;
        for entry in stored.outbox {
            self.insert_entry(entry);
        }
        let pending_now: Vec<Key> = self.entries_by_record.keys().cloned().collect();
        for k in pending_before.iter().chain(pending_now.iter()) {
            self.touch_record(k);
        }
        self.conflicts = stored
            .conflicts
            .into_iter()
            .map(|c| (c.conflict_id.clone(), c))
            .collect_btree_map();
        self.dead_letters = stored
            .dead_letters
            .into_iter()
            .map(|d| (d.letter_id.clone(), d))
            .collect_btree_map();
        self.own_stamps.extend(own);
        crate::sorting::sort_stable_by(&mut self.own_stamps, Ord::cmp);
        self.own_stamps.dedup();
        self.resync_seen.clear();
        // What was read is what the store holds: nothing to save.
        self.dirty = Dirty::default();
        self.records_missing_for_entries()
    }

    /// Takes in the stored records of `keys` (those without one were deleted) after a
    /// [`Replica::refresh`] found them missing; returns those still missing.
    pub fn take_in_records(
        &mut self,
        records: Vec<LocalRecord>,
        keys: &BTreeSet<(String, String)>,
    ) -> BTreeSet<(String, String)> {
        self.replace_records(records, keys);
        self.dirty.records.clear();
        self.records_missing_for_entries()
    }

    fn replace_records(&mut self, records: Vec<LocalRecord>, keys: &BTreeSet<(String, String)>) {
        for k in keys {
            self.records.remove(k);
            self.touch_record(k);
        }
        for record in records {
            let k = key(&record.collection, &record.id);
            if keys.contains(&k) {
                self.records.insert(k, record);
            }
        }
    }

    fn records_missing_for_entries(&self) -> BTreeSet<(String, String)> {
        self.entries_by_record
            .keys()
            .filter(|k| !self.records.contains_key(*k))
            .cloned()
            .collect_btree_set()
    }
}
