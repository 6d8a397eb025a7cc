//! Live queries: each holds its rows ([`LiveRows`]) and follows the replica's change sets —
//! a changed record enters, leaves or moves by binary search — instead of re-scanning and
//! re-sorting its collection on every write. A query is answered (first, after a change set
//! it cannot follow, and when a row left a page cut by `limit`) through the collection's
//! declared indexes when one serves it (`ferry_core::query`).
//!
//! A live query's lifetime: it follows changes only while it has subscribers. One without
//! subscribers (never subscribed, or after its last unsubscribe) is only marked stale, and
//! answered again when read (`getSnapshot`) or subscribed again. While it has subscribers
//! it keeps itself alive (its JS object may be collected meanwhile: the app holds only the
//! unsubscribe function); once it has none and its JS object is collected (wasm-bindgen
//! registers exported objects with a `FinalizationRegistry`) or `.free()`d, it is gone.

use super::Client;
use crate::interop::{json_to_js, RowRef};
use crate::subject::Subject;
use ferry_core::query::{run, Indexes, LiveRows, QuerySpec, Step};
use ferry_core::replica::Replica;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::ops::Deref;
use std::rc::{Rc, Weak};

/// What the app asked for and where its value goes.
pub struct LiveQuerySpec {
    pub query: QuerySpec,
    pub subject: Rc<Subject>,
}

/// A live query (see the module docs for its lifetime).
pub struct Query {
    spec: LiveQuerySpec,
    client: Weak<Client>,
    /// Changes may have happened since the rows were computed (no one was subscribed).
    stale: Cell<bool>,
    /// The query itself while it has subscribers (see the module docs).
    keep_alive: RefCell<Option<Rc<Query>>>,
    rows: RefCell<LiveRows>,
}

impl Deref for Query {
    type Target = LiveQuerySpec;
    fn deref(&self) -> &LiveQuerySpec {
        &self.spec
    }
}

/// How a query's rows were brought up to date.
pub enum Outcome {
    Same,
    Changed,
    Answered,
}

impl Query {
    pub(super) fn new(spec: LiveQuerySpec, client: Weak<Client>) -> Query {
        Query {
            spec,
            client,
            stale: Cell::new(false),
            keep_alive: RefCell::new(None),
            rows: RefCell::new(LiveRows::default()),
        }
    }

    pub fn collection(&self) -> &str {
        &self.query.collection
    }

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

    pub(super) fn watched(&self) -> bool {
        let watched = self.subject.subscriber_count() > 0;
        if !watched {
            self.stale.set(true);
        }
        watched
    }

    /// Answers the query again if changes were skipped while no one was subscribed.
    pub fn refresh_if_stale(&self) {
        if !self.stale.get() {
            return;
        }
        let Some(client) = self.client.upgrade() else {
            return;
        };
        self.stale.set(false);
        let text = {
            let replica = client.engine.replica();
            self.answer(&replica, &mut client.indexes.borrow_mut());
            self.text(&replica)
        };
        client.count_computation(self.collection());
        self.publish(text);
    }

    /// Answers the query from the replica through the indexes.
    pub(super) fn answer(&self, replica: &Replica, indexes: &mut Indexes) {
        *self.rows.borrow_mut() = LiveRows::new(run(&self.query, indexes, replica));
    }

    /// Follows the records `ids` of the query's collection to their state in `replica`.
    pub(super) fn follow(
        &self,
        replica: &Replica,
        indexes: &mut Indexes,
        ids: &BTreeSet<String>,
    ) -> Outcome {
        let step = self.rows.borrow_mut().follow(&self.query, ids, replica);
        match step {
            Step::Unchanged => Outcome::Same,
            Step::Changed => Outcome::Changed,
            Step::Reread => {
                self.answer(replica, indexes);
                Outcome::Answered
            }
        }
    }

    /// The rows as JSON text (the fingerprint the subject compares).
    pub(super) fn text(&self, replica: &Replica) -> String {
        let rows = self.rows.borrow();
        let rows: Vec<RowRef> = rows
            .ids()
            .filter_map(|id| replica.record(&self.query.collection, id))
            .map(|r| RowRef {
                id: &r.id,
                fields: &r.state.fields,
            })
            .collect();
        serde_json::to_string(&rows).unwrap_or_default()
    }

    /// Publishes `text` (from [`Query::text`]) if it differs from the current rows.
    pub(super) fn publish(&self, text: String) {
        self.subject
            .set_if_changed(text.clone(), || json_to_js(&text));
    }
}
