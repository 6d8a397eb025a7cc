//! Live queries under concurrent sync: each simulated device keeps a few live queries
//! (through declared indexes) that follow its replica's change sets after every step, as a
//! browser tab's do, and each is compared with a brute-force answer over the replica's
//! records. A change the replica does not report, an index that drifts or a live result
//! that follows a change wrongly shows up as a difference.

use super::check::Violation;
use crate::changes::Changes;
use crate::engine::Engine;
use crate::ports::{Clock, Entropy, Store, TokenSource, Transport};
use crate::query::{run, IndexDecl, Indexes, KeyPart, LiveRows, Order, QuerySpec, Step};
use crate::replica::Replica;
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
        LiveQueries {
            indexes: Indexes::new(vec![
                decl("tasks", &["done", "title"]),
                decl("expenses", &["amount"]),
                decl("notes", &["title"]),
            ]),
            live: specs
                .into_iter()
                .map(|q| (q, LiveRows::default()))
                .collect(),
        }
    }
}

/// The rows by brute force: filter, sort, limit.
fn model(spec: &QuerySpec, replica: &Replica) -> Vec<String> {
    let mut rows: Vec<(KeyPart, String)> = replica
        .live_records(&spec.collection)
        .filter(|r| spec.matches(&r.state.fields))
        .map(|r| spec.sort_key(&r.id, &r.state.fields))
        .collect();
    rows.sort_by(|a, b| spec.cmp_keys(a, b));
    rows.into_iter()
        .take(spec.limit.unwrap_or(usize::MAX))
        .map(|(_, id)| id)
        .collect()
}

impl LiveQueries {
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
