//! Pushing and settling: freezing entries into a push, applying its answers, and rebasing
//! pending local edits over a newer server state by each collection's policy (`settle`, which
//! pulled pages use too; see `pull.rs`).

use super::{apply_op, key, ConflictEntry, DeadLetter, Event, Key, Outcome, Replica};
use crate::ids::op_id;
use crate::outbox::{select_batch, OutboxEntry, SentAs};
use crate::policy::{resolve, Resolution, State};
use crate::priority::candidates;
use crate::protocol::{PushRequest, PushResponse, Record};
use std::collections::HashMap;

/// What a push answer left to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub applied: usize,
    pub conflicts: usize,
    pub dead_lettered: usize,
    /// Ops the server asked to send again later (retryable refusals).
    pub retry: usize,
    /// Ops refused for a stamp ahead of the server's clock, sent again re-stamped.
    pub restamped: usize,
}

/// The server's code for a mutation whose stamp is beyond the clock bound of its clock.
pub const CLOCK_AHEAD: &str = "clock_ahead";

impl Replica {
    /// Whether anything waits to be pushed.
    pub fn has_pending_push(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Whether sent entries still wait for a final answer (pull only when none do).
    pub fn has_in_flight(&self) -> bool {
        self.sent_entries > 0
    }

    /// Freezes the next batch and returns it. Commit [`Replica::take_writes`] before sending,
    /// so a crash after sending can only retry the very same ops.
    pub fn begin_push(&mut self) -> Option<PushRequest> {
        self.begin_push_with(false)
    }

    /// [`Replica::begin_push`] with the collections' priorities applied: unsent entries go
    /// most urgent first and, when the network is `degraded`, background entries wait while a
    /// critical one does (see `crate::priority`).
    pub fn begin_push_with(&mut self, degraded: bool) -> Option<PushRequest> {
        let limits = self.push_limits.current();
        let config = &self.config;
        let candidates = candidates(self.outbox.values(), |c| config.priority(c), degraded);
        let selection = select_batch(candidates.into_iter(), self.config.batch_size, limits);
        self.dead_letter_too_large(&selection.too_large, limits);
        let ids = selection.ids;
        if ids.is_empty() {
            return None;
        }
        let mut mutations = Vec::with_capacity(ids.len());
        for id in ids {
            let k = {
                let e = &self.outbox[&id];
                key(&e.collection, &e.record_id)
            };
            let base_version = self.records.get(&k).map_or(0, |r| r.version());
            let (client_id, seq) = (self.meta.client_id.clone(), self.meta.next_seq);
            let entry = self.outbox.get_mut(&id).expect("selected entry exists");
            if entry.sent.is_none() {
                entry.sent = Some(SentAs {
                    op_id: op_id(&client_id, seq),
                    client_id,
                    seq,
                    base_version,
                });
                self.meta.next_seq += 1;
                self.dirty.meta = true;
                self.sent_entries += 1;
            }
            entry.attempts += 1;
            mutations.extend(entry.mutation());
            self.dirty.outbox.insert(id);
        }
        Some(PushRequest {
            client_id: self.meta.client_id.clone(),
            mutations,
        })
    }

    /// Records a failed attempt on every sent entry (for retry metadata and metrics).
    pub fn note_push_failure(&mut self, error: &str) {
        let ids: Vec<String> = self
            .outbox
            .values()
            .filter(|e| e.is_sent())
            .map(|e| e.entry_id.clone())
            .collect();
        for id in ids {
            if let Some(e) = self.outbox.get_mut(&id) {
                e.last_error = Some(error.to_owned());
                self.dirty.outbox.insert(id);
            }
        }
    }

    /// Applies the server's answer to a push: acks become the new base, conflicts are settled
    /// by policy, final refusals become dead letters; retryable refusals stay frozen.
    pub fn on_push_response(&mut self, resp: &PushResponse, now_ms: u64) -> PushSummary {
        let by_op: HashMap<String, String> = self
            .outbox
            .values()
            .filter_map(|e| {
                e.sent
                    .as_ref()
                    .map(|s| (s.op_id.clone(), e.entry_id.clone()))
            })
            .collect();
        let mut summary = PushSummary::default();
        for a in &resp.accepted {
            let Some(entry) = by_op.get(&a.op_id).and_then(|id| self.remove_entry(id)) else {
                continue;
            };
            summary.applied += 1;
            self.acknowledge(entry, a.version, now_ms);
        }
        for c in &resp.conflicts {
            let Some(entry) = by_op.get(&c.op_id).and_then(|id| self.remove_entry(id)) else {
                continue;
            };
            summary.conflicts += 1;
            let k = key(&entry.collection, &entry.record_id);
            // An answer from a history that lost this device's acknowledged write (a restored
            // server, detected by this push's answer or by a version lower than the one this
            // device holds): the server's state is not a later write to merge with. As in a
            // repair resync, rebase on it and push what this device holds, if that is later.
            let held = self.records.get(&k).and_then(|r| r.base.as_ref());
            let older_history = held.is_some_and(|b| b.version > c.server.version);
            let held_later = held.is_some_and(|b| b.hlc >= c.server.hlc);
            if (self.meta.restoring || older_history) && held_later {
                let unsent = self.entries_of(&k).into_iter().find(|e| !e.is_sent());
                let entry_hlc = unsent
                    .map_or(entry.hlc.clone(), |e| e.hlc.clone().max(entry.hlc.clone()))
                    .max(c.server.hlc.clone());
                let into = self.rebase_and_repush(&k, Some(c.server.clone()), entry_hlc, now_ms);
                self.report_kept(entry.entry_id, &k, into);
                continue;
            }
            let mut pending = vec![entry];
            pending.extend(self.take_entries(&k));
            self.settle(&k, c.server.clone(), pending, now_ms);
        }
        for r in &resp.rejected {
            let Some(entry_id) = by_op.get(&r.op_id) else {
                continue;
            };
            if r.retryable {
                summary.retry += 1;
                if let Some(e) = self.outbox.get_mut(entry_id) {
                    e.last_error = Some(format!("{}: {}", r.code, r.message));
                    self.dirty.outbox.insert(entry_id.clone());
                }
                continue;
            }
            let Some(entry) = self.remove_entry(entry_id) else {
                continue;
            };
            if r.code == CLOCK_AHEAD && self.meta.clock_calibrated {
                // Refused for its stamp, not its content: the write goes out again, stamped
                // with the calibrated clock (this answer carried the server's time).
                summary.restamped += 1;
                self.restamp(entry, now_ms);
                continue;
            }
            summary.dead_lettered += 1;
            self.dead_letter(entry, &r.code, &r.message, now_ms);
        }
        summary
    }

    /// Sends a write refused as `clock_ahead` again as a new entry, stamped with the
    /// corrected time (the clock is pulled back to it first: it ran ahead before the device
    /// first heard the server's time).
    fn restamp(&mut self, entry: OutboxEntry, now_ms: u64) {
        let k = key(&entry.collection, &entry.record_id);
        let corrected = self.corrected_now(now_ms);
        if self.meta.hlc.wall_ms > corrected {
            self.meta.hlc.wall_ms = corrected;
            self.meta.hlc.counter = 0;
            self.touch_meta();
        }
        let stamp = self.tick(now_ms);
        if let Some(rec) = self.records.get_mut(&k) {
            rec.hlc = stamp.clone();
            self.touch_record(&k);
        }
        let into = self.reconcile_entry(&k, &stamp, stamp.clone(), now_ms, false);
        self.report_kept(entry.entry_id, &k, into);
    }

    /// Reports a sent entry whose change goes out again (as `into`, when anything is left).
    fn report_kept(&mut self, entry_id: String, k: &Key, into: Option<String>) {
        self.events.push(Event::Settled {
            entry_id,
            collection: k.0.clone(),
            record_id: k.1.clone(),
            outcome: Outcome::Kept,
            into,
        });
    }

    fn acknowledge(&mut self, entry: OutboxEntry, version: u64, now_ms: u64) {
        let k = key(&entry.collection, &entry.record_id);
        let op_id = entry
            .sent
            .as_ref()
            .map(|s| s.op_id.clone())
            .unwrap_or_default();
        self.events.push(Event::Applied {
            entry_id: entry.entry_id.clone(),
            op_id,
            version,
        });
        let Some(rec) = self.records.get_mut(&k) else {
            return;
        };
        if version > rec.version() {
            let before = rec
                .base
                .as_ref()
                .map(State::of)
                .unwrap_or_else(State::tombstone);
            let after = apply_op(&before, entry.op, &entry.patch);
            rec.base = Some(Record {
                collection: k.0.clone(),
                id: k.1.clone(),
                version,
                fields: after.fields,
                deleted: after.deleted,
                hlc: entry.hlc.clone(),
            });
            self.touch_record(&k);
        }
        // A later unsent edit of this record is now relative to the new base.
        let pending = self
            .entries_of(&k)
            .into_iter()
            .find(|e| !e.is_sent())
            .map(|e| e.hlc.clone());
        if let Some(hlc) = pending {
            self.reconcile_entry(&k, &hlc, hlc.clone(), now_ms, false);
        } else if self.entries_of(&k).is_empty() {
            // Nothing pending: the view is exactly the server's state.
            let base = self.records[&k].base.clone();
            if let Some(base) = base {
                self.set_view(&k, State::of(&base), base.hlc.clone());
            }
        }
    }

    pub(super) fn take_entries(&mut self, k: &Key) -> Vec<OutboxEntry> {
        let ids: Vec<String> = self
            .entries_of(k)
            .into_iter()
            .map(|e| e.entry_id.clone())
            .collect();
        ids.iter().filter_map(|id| self.remove_entry(id)).collect()
    }

    pub(super) fn dead_letter(
        &mut self,
        entry: OutboxEntry,
        code: &str,
        message: &str,
        now_ms: u64,
    ) {
        let k = key(&entry.collection, &entry.record_id);
        let desired = self
            .records
            .get(&k)
            .map(|r| r.state.clone())
            .unwrap_or_else(State::tombstone);
        let letter_id = entry.entry_id.clone();
        let op_id = entry
            .sent
            .as_ref()
            .map(|s| s.op_id.clone())
            .unwrap_or_default();
        let mut carried = vec![entry];
        carried.extend(self.take_entries(&k));
        for e in &carried {
            self.events.push(Event::DeadLettered {
                entry_id: e.entry_id.clone(),
                letter_id: letter_id.clone(),
                code: code.to_owned(),
            });
        }
        self.dead_letters.insert(
            letter_id.clone(),
            DeadLetter {
                letter_id: letter_id.clone(),
                op_id,
                collection: k.0.clone(),
                record_id: k.1.clone(),
                op: carried[0].op,
                desired,
                code: code.to_owned(),
                message: message.to_owned(),
                failed_at_ms: now_ms,
                attempts: carried[0].attempts,
            },
        );
        self.dirty.dead_letters.insert(letter_id);
        // The server refused the change: show what it holds until the user retries.
        if code == "not_found" {
            // It holds nothing: the record was deleted and compacted away.
            if let Some(rec) = self.records.get_mut(&k) {
                rec.base = None;
            }
        }
        let (base, hlc) = match self.records.get(&k) {
            Some(r) => (
                r.base.as_ref().map(State::of),
                r.base.as_ref().map_or(r.hlc.clone(), |b| b.hlc.clone()),
            ),
            None => return,
        };
        self.set_view(&k, base.unwrap_or_else(State::tombstone), hlc);
    }

    /// Settles pending entries of a record against a newer server state by its policy.
    pub(super) fn settle(
        &mut self,
        k: &Key,
        server: Record,
        pending: Vec<OutboxEntry>,
        now_ms: u64,
    ) {
        self.observe_stamp(&server.hlc, now_ms);
        self.touch_meta();
        let policy = self.policy(&k.0);
        let (base, local) = match self.records.get(k) {
            Some(r) => (r.base.as_ref().map(State::of), r.state.clone()),
            None => (None, State::tombstone()),
        };
        let local_hlc = pending
            .iter()
            .map(|e| e.hlc.clone())
            .max()
            .unwrap_or_default();
        let resolution = resolve(policy, base.as_ref(), &local, &local_hlc, &server);
        // A record row missing under its outbox entries (storage lost it) is not a reason
        // to panic: the server's state becomes its base and the policy settles as usual.
        let rec = self
            .records
            .entry(k.clone())
            .or_insert_with(|| super::LocalRecord {
                collection: k.0.clone(),
                id: k.1.clone(),
                base: None,
                state: State::tombstone(),
                hlc: local_hlc.clone(),
            });
        rec.base = Some(server.clone());
        match resolution {
            Resolution::Keep { state, merged } => {
                let (outcome, entry_hlc) = if merged {
                    (Outcome::Merged, None)
                } else {
                    (Outcome::Kept, Some(local_hlc))
                };
                let id_hlc = self.tick(now_ms);
                let entry_hlc = entry_hlc.unwrap_or_else(|| id_hlc.clone());
                self.set_view(k, state, entry_hlc.clone());
                let into = self.reconcile_entry(k, &entry_hlc, id_hlc, now_ms, false);
                for e in pending {
                    self.events.push(Event::Settled {
                        entry_id: e.entry_id,
                        collection: k.0.clone(),
                        record_id: k.1.clone(),
                        outcome,
                        into: into.clone(),
                    });
                }
            }
            Resolution::TakeServer => {
                self.set_view(k, State::of(&server), server.hlc.clone());
                for e in pending {
                    self.events.push(Event::Settled {
                        entry_id: e.entry_id,
                        collection: k.0.clone(),
                        record_id: k.1.clone(),
                        outcome: Outcome::Superseded,
                        into: None,
                    });
                }
            }
            Resolution::Review { fields } => {
                let conflict_id = pending[0].entry_id.clone();
                self.conflicts.insert(
                    conflict_id.clone(),
                    ConflictEntry {
                        conflict_id: conflict_id.clone(),
                        collection: k.0.clone(),
                        record_id: k.1.clone(),
                        policy,
                        base,
                        local,
                        local_hlc,
                        server: server.clone(),
                        fields,
                        created_at_ms: now_ms,
                    },
                );
                self.dirty.conflicts.insert(conflict_id.clone());
                self.set_view(k, State::of(&server), server.hlc.clone());
                for e in pending {
                    self.events.push(Event::Conflicted {
                        entry_id: e.entry_id,
                        conflict_id: conflict_id.clone(),
                    });
                }
            }
        }
    }
}
