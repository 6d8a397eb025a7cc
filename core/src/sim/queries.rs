//! Live queries under concurrent sync: each simulated device keeps a few live queries
//! (through declared indexes) that follow its replica's change sets after every step, as a
//! browser tab's do, and each is compared with a brute-force answer over the replica's
//! records. A change the replica does not report, an index that drifts or a live result
//! that follows a change wrongly shows up as a difference. The same queries are also read
//! from the device's durable rows through their stored index keys (as a page load reads its
//! first page before the records are loaded: `query::stored`) and compared with the
//! brute-force answer over those rows.

use super::check::Violation;
use crate::changes::Changes;
use crate::engine::Engine;
use crate::ports::{Clock, Entropy, Store, TokenSource, Transport};
use crate::protocol::Fields;
use crate::query::{
    read_plan, run, stored_plan, IndexDecl, Indexes, KeyPart, LiveRows, Order, QuerySpec, Step,
};
use crate::replica::Replica;
use crate::replica::StoredState;
use serde_json::json;

fn spec(
    collection: &str,
    filter: serde_json::Value,
    order: (&str, bool),
    limit: usize,
) -> QuerySpec {
    let mut q = QuerySpec::all(collection)
        .with_where(filter.as_object().expect("an object"))
        .expect("a valid query");
    q.order = Some(Order {
        field: order.0.to_owned(),
        desc: order.1,
    });
    q.limit = Some(limit);
    q
}

fn decl(collection: &str, fields: &[&str]) -> IndexDecl {
    IndexDecl {
        collection: collection.to_owned(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

/// The live queries of one device.
pub struct LiveQueries {
    decls: Vec<IndexDecl>,
    indexes: Indexes,
    live: Vec<(QuerySpec, LiveRows)>,
}

impl Default for LiveQueries {
    fn default() -> Self {
        let specs = vec![
            spec("tasks", json!({"done": false}), ("title", false), 3),
            spec(
                "expenses",
                json!({"amount": {"gte": 0}}),
                ("amount", true),
                4,
            ),
            spec("notes", json!({}), ("title", false), 5),
            spec("tasks", json!({}), ("title", true), 1_000),
        ];
        let decls = vec![
            decl("tasks", &["done", "title"]),
            decl("expenses", &["amount"]),
            decl("notes", &["title"]),
        ];
        LiveQueries {
            indexes: Indexes::new(decls.clone()),
            decls,
            live: specs
                .into_iter()
                .map(|q| (q, LiveRows::default()))
                .collect(),
        }
    }
}

/// The rows by brute force over the replica's records: filter, sort, limit.
fn model(spec: &QuerySpec, replica: &Replica) -> Vec<String> {
    let live = replica
        .live_records(&spec.collection)
        .map(|r| (r.id.as_str(), &r.state.fields));
    model_of(spec, live)
}

/// The rows by brute force over `live` (id and fields of each live record).
fn model_of<'r>(
    spec: &QuerySpec,
    live: impl Iterator<Item = (&'r str, &'r Fields)>,
) -> Vec<String> {
    let mut rows: Vec<(KeyPart, String)> = live
        .filter(|(_, f)| spec.matches(f))
        .map(|(id, f)| spec.sort_key(id, f))
        .collect();
    rows.sort_by(|a, b| spec.cmp_keys(a, b));
    rows.into_iter()
        .take(spec.limit.unwrap_or(usize::MAX))
        .map(|(_, id)| id)
        .collect()
}

impl LiveQueries {
    /// Reads every query an index yields in order with a limit from `durable`'s rows through
    /// their stored index keys, and compares it with the brute-force answer over those rows.
    pub fn check_stored(&self, device: usize, durable: &StoredState) -> Result<(), Violation> {
        for (q, _) in &self.live {
            let Some(plan) = stored_plan(q, &self.decls) else {
                continue;
            };
            let live = || {
                durable
                    .records
                    .iter()
                    .filter(|r| r.collection == q.collection && !r.state.deleted)
                    .map(|r| (r.id.as_str(), &r.state.fields))
            };
            let read: Vec<String> = read_plan(q, &self.decls, &plan, live())
                .rows
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            let want = model_of(q, live());
            if read != want {
                return Err(Violation::new(format!(
                    "device {device}: {q:?} read through the stored index keys gives {read:?}, the stored rows say {want:?}"
                )));
            }
        }
        Ok(())
    }

    /// Follows what changed on `engine` since the last call, then compares every live
    /// result with the brute-force answer.
    pub fn follow_and_check<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy>(
        &mut self,
        device: usize,
        engine: &Engine<S, T, A, C, E>,
    ) -> Result<(), Violation> {
        // A device that restarted (or reloaded) reports every collection whole.
        let changes: Changes = engine.take_changes();
        let replica = engine.replica();
        self.indexes.follow(&changes, &*replica);
        for (q, rows) in self.live.iter_mut() {
            let step = match changes.ids(&q.collection) {
                Some(ids) => rows.follow(q, ids, &*replica),
                None if changes.touches(&q.collection) => Step::Reread,
                None => Step::Unchanged,
            };
            if step == Step::Reread {
                *rows = LiveRows::new(run(q, &mut self.indexes, &*replica));
            }
            let want = model(q, &replica);
            if !rows.ids().eq(want.iter().map(String::as_str)) {
                return Err(Violation::new(format!(
                    "device {device}: the live query {q:?} shows {:?}, the records say {want:?}",
                    rows.ids().collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }
}
