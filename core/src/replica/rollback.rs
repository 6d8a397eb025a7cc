//! Server rollback: the server lost history this replica holds (restored from an older
//! backup, or recreated empty). Detected from the history identity (`epoch`) and the head
//! cursor the server's answers carry; repaired by a resync from cursor 0 that rebases every
//! record on what the server has and re-pushes what the server lacks or holds older.
//!
//! The rule ("the clients restore the truth", ARCHITECTURE.md): what a device holds as
//! synced was acknowledged by the server once, so it is the truth unless the server holds a
//! later write of that record. "Later" is decided by the hybrid-logical-clock stamps, not by
//! versions: versions of two histories cannot be compared, stamps can.

use super::{key, Key, Replica};
use crate::hlc::Hlc;
use crate::policy::State;
use crate::protocol::Record;

/// What showed that the server lost history, as reported to the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollback {
    /// The history this replica had synced with (empty: it had not heard one).
    pub previous_epoch: String,
    /// The history the server answers from now.
    pub epoch: String,
    /// This replica's cursor when the rollback was seen.
    pub cursor: u64,
    /// The server's newest cursor in that answer.
    pub head: u64,
}

impl Replica {
    /// Checks a server answer against the history this replica synced with, and starts the
    /// repair when the server lost some of it: the epoch changed from a known one, or the
    /// server's head is behind this replica's cursor. An empty `epoch` comes from a server
    /// that predates epochs: nothing can be checked, nothing happens.
    ///
    /// Returns the rollback when one was detected; the caller then pulls from cursor 0 (the
    /// answer it checked belongs to a history this replica must not fold in piecemeal).
    pub fn check_history(&mut self, epoch: &str, head: u64) -> Option<Rollback> {
        if epoch.is_empty() {
            return None;
        }
        let changed = !self.meta.epoch.is_empty() && self.meta.epoch != epoch;
        let behind = head < self.meta.cursor;
        let previous_epoch = self.meta.epoch.clone();
        if self.meta.epoch != epoch {
            self.meta.epoch = epoch.to_owned();
            self.touch_meta();
        }
        if !changed && !behind {
            return None;
        }
        let rollback = Rollback {
            previous_epoch,
            epoch: epoch.to_owned(),
            cursor: self.meta.cursor,
            head,
        };
        self.meta.cursor = 0;
        self.meta.resyncing = true;
        self.meta.restoring = true;
        self.resync_seen.clear();
        self.touch_meta();
        Some(rollback)
    }

    /// Whether a repair resync is under way.
    pub fn is_restoring(&self) -> bool {
        self.meta.restoring
    }

    /// Folds one record of a repair resync: the server's state becomes the base, and what
    /// this device holds that is later than it goes out again as a new entry.
    pub(super) fn fold_restored(&mut self, server: &Record, now_ms: u64) {
        let k = key(&server.collection, &server.id);
        self.observe_stamp(&server.hlc, now_ms);
        let entries = self.entries_of(&k);
        if entries.iter().any(|e| e.is_sent()) {
            // The sent op's answer settles it (it conflicts or applies in the new history).
            return;
        }
        let unsent_hlc = entries.first().map(|e| e.hlc.clone());
        let Some(local) = self.records.get(&k) else {
            self.adopt(&k, server);
            return;
        };
        let held = local.base.as_ref().map(|b| b.hlc.clone());
        match held {
            // The server lost a later state this device holds (or holds it under another
            // version): rebase on the server and push the difference, stamped as written.
            Some(held) if held >= server.hlc => {
                let entry_hlc = unsent_hlc.unwrap_or(held).max(server.hlc.clone());
                self.rebase_and_repush(&k, Some(server.clone()), entry_hlc, now_ms);
            }
            // The server holds a later write: the ordinary rules apply.
            _ if unsent_hlc.is_some() => {
                let pending = self.take_entries(&k);
                self.settle(&k, server.clone(), pending, now_ms);
            }
            _ => self.adopt(&k, server),
        }
    }

    /// Ends a repair resync: records this device holds as synced that the server did not
    /// send were lost by the server, so they are created again (a tombstone is let go).
    pub(super) fn finish_restore(&mut self, now_ms: u64) {
        let lost: Vec<Key> = self
            .records
            .iter()
            .filter(|(k, r)| r.base.is_some() && !self.resync_seen.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in lost {
            let entries = self.entries_of(&k);
            if entries.iter().any(|e| e.is_sent()) {
                continue;
            }
            let unsent_hlc = entries.first().map(|e| e.hlc.clone());
            let (held_live, held_hlc) = match self.records.get(&k).and_then(|r| r.base.as_ref()) {
                Some(b) => (!b.deleted, b.hlc.clone()),
                None => continue,
            };
            let wanted_live = self.records.get(&k).is_some_and(|r| !r.state.deleted);
            if !held_live && !wanted_live {
                self.records.remove(&k);
                self.touch_record(&k);
                continue;
            }
            let entry_hlc = unsent_hlc.unwrap_or(held_hlc);
            self.rebase_and_repush(&k, None, entry_hlc, now_ms);
        }
        self.meta.restoring = false;
    }

    fn adopt(&mut self, k: &Key, server: &Record) {
        self.set_view(k, State::of(server), server.hlc.clone());
        if let Some(rec) = self.records.get_mut(k) {
            rec.base = Some(server.clone());
        }
    }

    /// Rebases `k` on `base` and queues what this device holds over it; returns the entry
    /// that carries it (`None`: nothing differs).
    pub(super) fn rebase_and_repush(
        &mut self,
        k: &Key,
        base: Option<Record>,
        entry_hlc: Hlc,
        now_ms: u64,
    ) -> Option<String> {
        if let Some(rec) = self.records.get_mut(k) {
            rec.base = base;
        }
        self.touch_record(k);
        let id_hlc = self.tick(now_ms);
        self.reconcile_entry(k, &entry_hlc, id_hlc, now_ms, false)
    }
}
