//! Folding pulled pages in: records, removals (partial sync), the critical-first head start,
//! and the resync from cursor 0 after an expired cursor.

use super::{key, Key, Replica};
use crate::policy::State;
use crate::protocol::{PullResponse, Revoked};

impl Replica {
    /// Folds one pulled page in and advances the cursor (never backwards).
    pub fn on_pull_page(&mut self, page: &PullResponse, now_ms: u64) {
        if self.meta.cursor == 0 && !self.meta.resyncing {
            // A pull from 0 is a snapshot without compacted tombstones: records this device
            // synced (by pushing them) but does not see in it were deleted meanwhile.
            self.meta.resyncing = true;
            self.resync_seen.clear();
        }
        self.fold_changes(page, now_ms, self.meta.resyncing);
        if !page.view.is_empty() && page.view != self.meta.view {
            self.meta.view = page.view.clone();
        }
        if page.cursor > self.meta.cursor {
            self.meta.cursor = page.cursor;
        }
        if !page.has_more {
            self.meta.last_synced_at_ms = Some(now_ms);
            if self.meta.restoring {
                self.finish_restore(now_ms);
            }
            if self.meta.resyncing {
                self.finish_resync();
            }
        }
        self.touch_meta();
    }

    /// Folds a page of a first sync's critical-first pass (`collections=`, PROTOCOL.md §4):
    /// its records and removals like any page, but the cursor, the resync's bookkeeping and
    /// `last_synced_at` stay as they are. The pass is only a head start: the full pass from 0
    /// that follows sees every record again (those already folded are skipped by version),
    /// so the one cursor and the drop-what-was-not-seen rule keep their meaning. Not for a
    /// replica restoring after a server rollback (the restore is the full pass's job).
    pub fn on_priority_page(&mut self, page: &PullResponse, now_ms: u64) {
        debug_assert!(
            !self.meta.restoring,
            "no critical-first pass while restoring"
        );
        self.fold_changes(page, now_ms, false);
        self.touch_meta();
    }

    /// Whether a pull from here would be a first sync's pass from 0 that may take the
    /// critical collections first: the cursor is 0, no restore runs, and the config has
    /// critical collections and others. Returns the critical collections, sorted.
    pub fn critical_first(&self) -> Option<Vec<String>> {
        if self.meta.cursor != 0 || self.meta.restoring {
            return None;
        }
        let critical: Vec<String> = self
            .config
            .collections
            .keys()
            .filter(|c| self.config.priority(c) == crate::priority::Priority::Critical)
            .cloned()
            .collect();
        let others = self.config.collections.len() - critical.len();
        // A name the server would refuse in `collections=` would fail every first sync: no
        // head start then, the full pass alone (as without critical collections).
        let nameable = critical
            .iter()
            .all(|c| crate::protocol::validate_collection("collections", c).is_ok());
        let fits = critical.len() <= crate::protocol::limits::MAX_PULL_COLLECTIONS;
        (!critical.is_empty() && others > 0 && nameable && fits).then_some(critical)
    }

    /// The records and removals of a page, folded into the replica (`track_resync`: they
    /// count as seen by the pass from 0 in progress).
    fn fold_changes(&mut self, page: &PullResponse, now_ms: u64, track_resync: bool) {
        for server in &page.changes {
            let k = key(&server.collection, &server.id);
            if track_resync {
                self.resync_seen.insert(k.clone());
            }
            if self.meta.restoring {
                self.fold_restored(server, now_ms);
                continue;
            }
            let held = self.records.get(&k);
            if held.is_some_and(|r| r.version() > server.version) {
                continue;
            }
            let entries = self.entries_of(&k);
            if held.is_some_and(|r| r.version() == server.version) {
                // Our own acknowledged write, as the server stored it. It differs from what we
                // hold only by fields the server sets (the owner, on create): take them, unless
                // a newer local edit waits (its own answer brings the server's state again).
                let same = held.and_then(|r| r.base.as_ref()) == Some(server);
                if same || !entries.is_empty() {
                    continue;
                }
                self.set_view(&k, State::of(server), server.hlc.clone());
                self.records.get_mut(&k).expect("held").base = Some(server.clone());
                continue;
            }
            if entries.iter().any(|e| e.is_sent()) {
                // Only reachable if a pull overlaps a push; the sent op's answer settles it.
                continue;
            }
            if entries.is_empty() {
                self.observe_stamp(&server.hlc, now_ms);
                self.set_view(&k, State::of(server), server.hlc.clone());
                self.records.get_mut(&k).expect("just set").base = Some(server.clone());
            } else {
                let pending = self.take_entries(&k);
                self.settle(&k, server.clone(), pending, now_ms);
            }
        }
        for revoked in &page.revoked {
            self.revoke(revoked, now_ms);
        }
    }

    /// A record the user may no longer read (partial sync, PROTOCOL.md §8): its copy goes,
    /// and nothing is pushed for it. Pending local edits of it cannot be written any more
    /// (the server refuses writes to what the user may not read), so they become one dead
    /// letter saying why — the user's edit is kept there, not lost silently.
    fn revoke(&mut self, revoked: &Revoked, now_ms: u64) {
        let k = key(&revoked.collection, &revoked.id);
        // A newer version than the one that took the record out: it became readable again.
        // The same version is the unreadable state itself (our own write took us out of the
        // view, and the ack gave us its version), so it goes.
        if self
            .records
            .get(&k)
            .is_some_and(|r| r.version() > revoked.version)
        {
            return;
        }
        let entries = self.entries_of(&k);
        if entries.iter().any(|e| e.is_sent()) {
            // Only reachable if a pull overlaps a push; the sent op's answer settles it.
            return;
        }
        let first = entries.first().map(|e| e.entry_id.clone());
        if let Some(first) = first.and_then(|id| self.remove_entry(&id)) {
            // `dead_letter` carries the record's other entries into the same letter.
            self.dead_letter(
                first,
                "forbidden",
                &format!(
                    "you may no longer read `{}` record `{}`, so this change cannot be saved",
                    revoked.collection, revoked.id
                ),
                now_ms,
            );
        }
        if self.records.remove(&k).is_some() {
            self.touch_record(&k);
        }
    }

    /// The server compacted past our cursor: start over from 0 and drop what it no longer has.
    pub fn on_cursor_expired(&mut self) {
        self.meta.cursor = 0;
        self.meta.resyncing = true;
        self.resync_seen.clear();
        self.touch_meta();
    }

    fn finish_resync(&mut self) {
        let gone: Vec<Key> = self
            .records
            .iter()
            .filter(|(k, r)| r.base.is_some() && !self.resync_seen.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if self.entries_by_record.contains_key(&k) {
                // Deleted and compacted on the server while edited here: the local edit
                // survives as a new record rather than being refused as `not_found`.
                self.records.get_mut(&k).expect("listed above").base = None;
                let pending = self.entries_of(&k).into_iter().find(|e| !e.is_sent());
                if let Some(hlc) = pending.map(|e| e.hlc.clone()) {
                    let now = self.meta.hlc.wall_ms;
                    self.reconcile_entry(&k, &hlc, hlc.clone(), now, false);
                }
            } else {
                self.records.remove(&k);
            }
            self.touch_record(&k);
        }
        self.meta.resyncing = false;
        self.resync_seen.clear();
    }
}
