//! What the app observes: live queries, the sync state, the conflict inbox and the dead
//! letters. Each is recomputed from the replica when something may have changed and only
//! re-published (with a new reference) when its content did change.
//!
//! A live query's lifetime: it is recomputed on changes only while it has subscribers. One
//! without subscribers (never subscribed, or after its last unsubscribe) is only marked
//! stale, and recomputed when read (`getSnapshot`) or subscribed again. While it has
//! subscribers it keeps itself alive (its JS object may be collected meanwhile: the app
//! holds only the unsubscribe function); once it has none and its JS object is collected (wasm-bindgen registers exported objects with a `FinalizationRegistry`) or
//! `.free()`d, it is gone.

use super::Client;
use crate::api::conflicts::Conflict;
use crate::api::dead_letters::DeadLetter;
use crate::interop::{json_to_js, row_value, RowRef};
use crate::subject::Subject;
use ferry_core::protocol::Fields;
use ferry_core::replica::Replica;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};

/// Whether a reload from the store is running, and whether another one was asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    Idle,
    Running,
    Again,
}

/// What a live query asks for: the live records of a collection with equal `filter`
/// fields, ordered.
pub struct QuerySpec {
    pub collection: String,
    pub filter: Fields,
    /// Field and descending?
    pub order: Option<(String, bool)>,
    pub limit: Option<usize>,
    pub subject: Rc<Subject>,
}

/// A live query (see the module docs for its lifetime).
pub struct Query {
    spec: QuerySpec,
    client: Weak<Client>,
    /// Changes may have happened since the value was computed (no one was subscribed).
    stale: Cell<bool>,
    /// The query itself while it has subscribers (see the module docs).
    keep_alive: RefCell<Option<Rc<Query>>>,
}

impl std::ops::Deref for Query {
    type Target = QuerySpec;
    fn deref(&self) -> &QuerySpec {
        &self.spec
    }
}

impl Query {
    /// A subscriber was added: live at least until the last one leaves.
    pub fn hold(self: &Rc<Self>) {
        *self.keep_alive.borrow_mut() = Some(self.clone());
    }

    /// A subscriber left: when it was the last, the query lives only as long as its JS
    /// object.
    pub fn release_if_unwatched(&self) {
        if self.subject.subscriber_count() == 0 {
            self.keep_alive.borrow_mut().take();
        }
    }

    /// Recomputes the value if changes were skipped while no one was subscribed.
    pub fn refresh_if_stale(&self) {
        if !self.stale.get() {
            return;
        }
        let Some(client) = self.client.upgrade() else {
            return;
        };
        self.stale.set(false);
        let text = self.compute(&client.engine.replica());
        client.count_computation(&self.collection);
        self.publish(text);
    }

    /// The rows as JSON text.
    fn compute(&self, replica: &Replica) -> String {
        let mut rows: Vec<&ferry_core::replica::LocalRecord> = replica
            .live_records(&self.collection)
            .filter(|r| {
                self.filter
                    .iter()
                    .all(|(k, v)| r.state.fields.get(k) == Some(v))
            })
            .collect();
        if let Some((field, desc)) = &self.order {
            rows.sort_by(|a, b| {
                let o = compare(a.state.fields.get(field), b.state.fields.get(field))
                    .then_with(|| a.id.cmp(&b.id));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        let rows: Vec<RowRef> = rows
            .into_iter()
            .take(self.limit.unwrap_or(usize::MAX))
            .map(|r| RowRef {
                id: &r.id,
                fields: &r.state.fields,
            })
            .collect();
        serde_json::to_string(&rows).unwrap_or_default()
    }

    /// Publishes `text` (from [`Query::compute`]) if it differs from the current rows.
    fn publish(&self, text: String) {
        self.subject
            .set_if_changed(text.clone(), || json_to_js(&text));
    }
}

fn rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Object(_)) => 5,
    }
}

/// Orders field values: missing and null first, then booleans, numbers, strings.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Client {
    /// Registers a live query and computes its first value.
    pub fn query(&self, spec: QuerySpec) -> Rc<Query> {
        let query = Rc::new(Query {
            spec,
            client: self.me.clone(),
            stale: Cell::new(false),
            keep_alive: RefCell::new(None),
        });
        let text = query.compute(&self.engine.replica());
        self.count_computation(&query.collection);
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

    /// Recomputes the live queries of the collections whose records changed since the last
    /// call (ferry-core's [`Replica::take_changed_collections`]: local writes, pulled
    /// records, acks, settles), then the sync state. A sync cycle that pulled only `notes`
    /// leaves every `tasks` query alone.
    pub(super) fn publish_changes(&self) {
        self.publish_outcomes();
        let changed = self.engine.take_changed_collections();
        if !changed.is_empty() {
            self.publish_queries(Some(&changed));
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
        self.engine.take_changed_collections();
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

    fn count_computation(&self, collection: &str) {
        *self
            .computations
            .borrow_mut()
            .entry(collection.to_owned())
            .or_default() += 1;
    }

    /// Recomputes the subscribed live queries of `collections` (`None`: all of them); the
    /// others are marked stale.
    fn publish_queries(&self, collections: Option<&BTreeSet<String>>) {
        let queries: Vec<Rc<Query>> = {
            let mut all = self.queries.borrow_mut();
            all.retain(|q| q.strong_count() > 0);
            all.iter()
                .filter_map(|q| q.upgrade())
                .filter(|q| collections.is_none_or(|c| c.contains(&q.collection)))
                .filter(|q| {
                    let watched = q.subject.subscriber_count() > 0;
                    if !watched {
                        q.stale.set(true);
                    }
                    watched
                })
                .collect()
        };
        if queries.is_empty() {
            return;
        }
        // Compute everything first: a subscriber may write, which needs the replica.
        let texts: Vec<(Rc<Query>, String)> = {
            let replica = self.engine.replica();
            let mut counts = self.computations.borrow_mut();
            queries
                .into_iter()
                .map(|q| {
                    *counts.entry(q.collection.clone()).or_default() += 1;
                    let text = q.compute(&replica);
                    (q, text)
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
        })
    }

    /// Publishes the sync state; a follower shows the leader's network figures.
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
