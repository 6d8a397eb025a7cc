//! What the app observes: live queries (`queries.rs`), the sync state, the conflict inbox
//! and the dead letters. Each is brought up to date from the replica when something may
//! have changed and only re-published (with a new reference) when its content did change.

use super::queries::{LiveQuerySpec, Outcome, Query};
use super::Client;
use crate::api::conflicts::Conflict;
use crate::api::dead_letters::DeadLetter;
use crate::interop::{json_to_js, row_value};
use ferry_core::changes::Changes;
use serde_json::{json, Value};
use std::rc::Rc;

impl Client {
    /// Registers a live query and computes its first value.
    pub fn query(&self, spec: LiveQuerySpec) -> Rc<Query> {
        let query = Rc::new(Query::new(spec, self.me.clone()));
        let text = {
            let replica = self.engine.replica();
            query.answer(&replica, &mut self.indexes.borrow_mut());
            query.text(&replica)
        };
        self.count_computation(query.collection());
        query.publish(text);
        let mut queries = self.queries.borrow_mut();
        queries.retain(|q| q.strong_count() > 0);
        queries.push(Rc::downgrade(&query));
        query
    }

    /// The record as the app sees it (`{id, ...fields}`), if it exists.
    pub fn get(&self, collection: &str, id: &str) -> Option<Value> {
        let replica = self.engine.replica();
        let record = replica
            .record(collection, id)
            .filter(|r| !r.state.deleted)?;
        Some(row_value(&record.id, &record.state.fields))
    }

    /// The replica changed (a local write, an inbox action, a commit): recomputes the live
    /// queries of the collections it reports as changed, and the sync state; the inbox too
    /// when `inbox`.
    pub(super) fn changed(&self, inbox: bool) {
        self.publish_changes();
        if inbox {
            self.publish_inbox();
        }
    }

    /// Brings the indexes and live queries up to date with the records changed since the
    /// last call (ferry-core's [`Changes`]: local writes, pulled records, acks, settles),
    /// then the sync state. A sync cycle that pulled only `notes` leaves every `tasks`
    /// query alone.
    pub(super) fn publish_changes(&self) {
        self.publish_outcomes();
        let changes = self.engine.take_changes();
        if !changes.is_empty() {
            self.publish_queries(Some(&changes));
        }
        self.schedule_sync_state();
    }

    /// Publishes the sync state once, after the current task: 10,000 writes issued in one
    /// loop change the outbox depth 10,000 times, but only the last figure is worth showing
    /// (and computing it walks the outbox).
    fn schedule_sync_state(&self) {
        if self.sync_state_scheduled.replace(true) {
            return;
        }
        if let Some(me) = self.rc() {
            wasm_bindgen_futures::spawn_local(async move {
                me.sync_state_scheduled.set(false);
                me.publish_sync_state();
            });
        }
    }

    /// Recomputes every view.
    pub fn publish_all(&self) {
        self.engine.take_changes();
        self.publish_queries(None);
        self.publish_inbox();
        self.publish_sync_state();
    }

    /// How many times live queries of `collection` were computed (for tests and profiling).
    pub fn query_computations(&self, collection: &str) -> u64 {
        self.computations
            .borrow()
            .get(collection)
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn count_computation(&self, collection: &str) {
        *self
            .computations
            .borrow_mut()
            .entry(collection.to_owned())
            .or_default() += 1;
    }

    /// Follows `changes` in the indexes and the subscribed live queries of the changed
    /// collections (`None`: everything changed, answer them all again); the unsubscribed
    /// ones are marked stale.
    fn publish_queries(&self, changes: Option<&Changes>) {
        {
            let replica = self.engine.replica();
            let mut indexes = self.indexes.borrow_mut();
            match changes {
                None => *indexes = ferry_core::query::Indexes::new(self.options.indexes.clone()),
                Some(changes) => indexes.follow(changes, &*replica),
            }
        }
        let queries: Vec<Rc<Query>> = {
            let mut all = self.queries.borrow_mut();
            all.retain(|q| q.strong_count() > 0);
            all.iter()
                .filter_map(|q| q.upgrade())
                .filter(|q| changes.is_none_or(|c| c.touches(q.collection())))
                .filter(|q| q.watched())
                .collect()
        };
        if queries.is_empty() {
            return;
        }
        // Bring everything up to date first: a subscriber may write, which needs the replica.
        let texts: Vec<(Rc<Query>, String)> = {
            let replica = self.engine.replica();
            let mut indexes = self.indexes.borrow_mut();
            let mut counts = self.computations.borrow_mut();
            queries
                .into_iter()
                .filter_map(|q| {
                    let ids = changes.and_then(|c| c.ids(q.collection()));
                    let outcome = match ids {
                        Some(ids) => q.follow(&replica, &mut indexes, ids),
                        None => {
                            q.answer(&replica, &mut indexes);
                            Outcome::Answered
                        }
                    };
                    match outcome {
                        Outcome::Same => None,
                        Outcome::Answered => {
                            *counts.entry(q.collection().to_owned()).or_default() += 1;
                            Some(q.text(&replica))
                        }
                        Outcome::Changed => Some(q.text(&replica)),
                    }
                    .map(|text| (q, text))
                })
                .collect()
        };
        for (q, text) in texts {
            q.publish(text);
        }
    }

    fn publish_inbox(&self) {
        let (conflicts, letters) = {
            let r = self.engine.replica();
            (
                r.conflicts().cloned().collect::<Vec<_>>(),
                r.dead_letters().cloned().collect::<Vec<_>>(),
            )
        };
        let me = self.me.clone();
        let text = serde_json::to_string(&conflicts).unwrap_or_default();
        self.conflicts.set_if_changed(text, || {
            let list = js_sys::Array::new();
            for c in conflicts {
                list.push(&Conflict::new(me.clone(), c).into());
            }
            list.into()
        });
        let me = self.me.clone();
        let text = serde_json::to_string(&letters).unwrap_or_default();
        self.dead_letters.set_if_changed(text, || {
            let list = js_sys::Array::new();
            for d in letters {
                list.push(&DeadLetter::new(me.clone(), d).into());
            }
            list.into()
        });
    }

    /// The sync state as this tab's engine sees it.
    pub(super) fn own_sync_state(&self) -> Value {
        let s = self.engine.sync_state();
        let p = self.engine.progress();
        let r = self.engine.replica();
        json!({
            "status": s.status,
            "online": s.online,
            "outboxDepth": r.outbox_depth(),
            "inFlight": r.in_flight(),
            "conflicts": r.conflicts().count(),
            "deadLetters": r.dead_letters().count(),
            "lastSyncedAt": r.meta().last_synced_at_ms,
            "nextRetryAt": s.next_retry_at_ms,
            "lastError": s.last_error,
            "errorCode": s.last_error_code,
            "rollback": s.last_rollback.as_ref().map(|r| json!({"at": r.at_ms, "previousEpoch": r.previous_epoch, "epoch": r.epoch})),
            "storageLost": self.outcome_log.borrow().storage_lost,
            "corruptData": s.last_corrupt_data.as_ref().map(|c| json!({"at": c.at_ms, "collection": c.collection, "id": c.record_id, "detail": c.detail})),
            "isLeader": self.is_leader(),
            "storage": *self.storage.borrow(),
            "progress": {"pulled": p.pulled, "pullEstimate": p.pull_estimate, "pushed": p.pushed, "pushTotal": p.push_total},
            "waiting": waiting_json(self.engine.waiting_by_priority()),
            "degraded": self.engine.is_degraded(),
        })
    }

    /// Publishes the sync state; a follower shows the leader's network figures (and whether
    /// its network counts as poor).
    pub(crate) fn publish_sync_state(&self) {
        let mut state = self.own_sync_state();
        if !self.is_leader() {
            if let Some(leader) = self.leader_state.borrow().as_ref() {
                for key in [
                    "status",
                    "online",
                    "lastSyncedAt",
                    "nextRetryAt",
                    "lastError",
                    "errorCode",
                    "rollback",
                    "progress",
                    "degraded",
                ] {
                    state[key] = leader[key].clone();
                }
            }
        }
        let text = state.to_string();
        self.sync_state
            .set_if_changed(text.clone(), || json_to_js(&text));
    }
}

/// What waits in the outbox per collection priority.
fn waiting_json(counts: [usize; 3]) -> Value {
    json!({"critical": counts[0], "normal": counts[1], "background": counts[2]})
}
