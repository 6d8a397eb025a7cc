//! A live query's result that follows change sets: a changed record enters, leaves or
//! moves within the rows by binary search instead of the whole collection being scanned
//! and sorted again. Only a row leaving a page cut by `limit` needs a re-read (the row that
//! moves up into the page is not held), and that re-read goes through an index when one
//! serves the query.

use super::key::KeyPart;
use super::plan::{Records, Rows};
use super::spec::QuerySpec;
use crate::protocol::Fields;
use std::collections::HashMap;

/// What one change did to a live result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The rows are as before (the record is not and was not in them).
    Unchanged,
    /// A row entered, left, moved or changed its fields.
    Changed,
    /// A row left a page cut by `limit`: run the query again.
    Reread,
}

/// The rows of a live query, in its order, with each row's sort key by id.
#[derive(Clone, Debug, Default)]
pub struct LiveRows {
    rows: Rows,
    keys: HashMap<String, KeyPart>,
}

impl LiveRows {
    pub fn new(rows: Rows) -> LiveRows {
        let keys = rows
            .rows
            .iter()
            .map(|(k, id)| (id.clone(), k.clone()))
            .collect();
        LiveRows { rows, keys }
    }

    /// The ids of the rows, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rows.rows.iter().map(|(_, id)| id.as_str())
    }

    pub fn len(&self) -> usize {
        self.rows.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.rows.is_empty()
    }

    fn position(&self, spec: &QuerySpec, key: &(KeyPart, String)) -> Result<usize, usize> {
        self.rows
            .rows
            .binary_search_by(|probe| spec.cmp_keys(probe, key))
    }

    /// Follows the records `ids` of the query's collection to their state in `records`;
    /// stops at the first [`Step::Reread`].
    pub fn follow<'a>(
        &mut self,
        spec: &QuerySpec,
        ids: impl IntoIterator<Item = &'a String>,
        records: &impl Records,
    ) -> Step {
        let mut outcome = Step::Unchanged;
        for id in ids {
            match self.apply(spec, id, records.get(&spec.collection, id)) {
                Step::Unchanged => {}
                Step::Changed => outcome = Step::Changed,
                Step::Reread => return Step::Reread,
            }
        }
        outcome
    }

    /// Record `id` of the query's collection now has `fields` (`None`: deleted or gone).
    pub fn apply(&mut self, spec: &QuerySpec, id: &str, fields: Option<&Fields>) -> Step {
        let mut step = Step::Unchanged;
        if let Some(old) = self.keys.remove(id) {
            // Found by its key; by id should the order ever disagree (never panic in a tab).
            let at = self
                .position(spec, &(old, id.to_owned()))
                .ok()
                .or_else(|| self.rows.rows.iter().position(|(_, i)| i == id));
            if let Some(at) = at {
                self.rows.rows.remove(at);
            }
            step = Step::Changed;
        }
        let left = step == Step::Changed;
        let entered = fields.is_some_and(|f| spec.matches(f)) && {
            let key = spec.sort_key(id, fields.expect("checked above"));
            let limit = spec.limit.unwrap_or(usize::MAX);
            let at = self.position(spec, &key).unwrap_or_else(|at| at);
            // Beyond the last row of a cut page: somewhere among the rows not held.
            let beyond = at == self.rows.rows.len() && !self.rows.complete;
            if !spec.after_cursor(&key) || beyond || limit == 0 {
                false
            } else {
                self.rows.rows.insert(at, key.clone());
                self.keys.insert(id.to_owned(), key.0);
                if self.rows.rows.len() > limit {
                    let (_, dropped) = self.rows.rows.pop().expect("over the limit");
                    self.keys.remove(&dropped);
                    self.rows.complete = false;
                }
                true
            }
        };
        if left && !entered && !self.rows.complete {
            return Step::Reread;
        }
        if entered {
            Step::Changed
        } else {
            step
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run, IndexDecl, Indexes, QuerySpec};
    use super::*;
    use crate::query::spec::Order;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    /// Records in memory, for the brute-force comparison.
    #[derive(Default)]
    struct Mem(BTreeMap<String, Fields>);

    impl Records for Mem {
        fn live<'a>(&'a self, _: &'a str) -> Box<dyn Iterator<Item = (&'a str, &'a Fields)> + 'a> {
            Box::new(self.0.iter().map(|(k, v)| (k.as_str(), v)))
        }
        fn get(&self, _: &str, id: &str) -> Option<&Fields> {
            self.0.get(id)
        }
    }

    fn fields(v: Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    /// The rows by brute force: filter, sort, cursor, limit.
    fn model(spec: &QuerySpec, m: &Mem) -> Vec<String> {
        let mut rows: Vec<(KeyPart, String)> =
            m.0.iter()
                .filter(|(_, f)| spec.matches(f))
                .map(|(id, f)| spec.sort_key(id, f))
                .filter(|k| spec.after_cursor(k))
                .collect();
        rows.sort_by(|a, b| spec.cmp_keys(a, b));
        rows.into_iter()
            .take(spec.limit.unwrap_or(usize::MAX))
            .map(|(_, id)| id)
            .collect()
    }

    /// A small deterministic generator (no RNG in the core).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn record(g: &mut Lcg) -> Fields {
        let who = ["ann", "bob", "cy"][g.next(3) as usize];
        let mut f = fields(
            json!({"assignee": who, "done": g.next(2) == 1, "at": g.next(50), "title": format!("t{}", g.next(30))}),
        );
        if g.next(10) == 0 {
            f.remove("at");
        }
        if g.next(10) == 0 {
            f.insert("at".into(), json!(format!("s{}", g.next(5))));
        }
        f
    }

    fn specs() -> Vec<QuerySpec> {
        let base = |w: Value, order: Option<(&str, bool)>, limit: Option<usize>| {
            let mut q = QuerySpec::all("tasks")
                .with_where(w.as_object().unwrap())
                .unwrap();
            q.order = order.map(|(f, desc)| Order {
                field: f.into(),
                desc,
            });
            q.limit = limit;
            q
        };
        vec![
            base(json!({}), Some(("at", false)), Some(5)),
            base(json!({}), Some(("at", true)), Some(7)),
            base(json!({}), None, None),
            base(
                json!({"assignee": "ann", "done": false}),
                Some(("at", false)),
                Some(4),
            ),
            base(
                json!({"assignee": {"in": ["ann", "cy"]}, "done": true}),
                Some(("at", true)),
                Some(6),
            ),
            base(
                json!({"at": {"gte": 10, "lt": 30}}),
                Some(("at", false)),
                Some(5),
            ),
            base(json!({"at": {"between": [5, 8]}}), None, None),
            base(json!({"at": {"gt": 40}}), Some(("at", true)), Some(3)),
            base(
                json!({"title": {"prefix": "t1"}}),
                Some(("title", false)),
                Some(4),
            ),
            base(json!({"assignee": "bob"}), Some(("title", false)), Some(3)),
            base(json!({"done": false}), None, Some(5)),
        ]
    }

    fn indexes() -> Indexes {
        let decl = |f: &[&str]| IndexDecl {
            collection: "tasks".into(),
            fields: f.iter().map(|s| s.to_string()).collect(),
        };
        Indexes::new(vec![
            decl(&["at"]),
            decl(&["assignee", "done", "at"]),
            decl(&["title"]),
        ])
    }

    #[test]
    fn indexed_answers_and_live_rows_equal_the_brute_force_model() {
        let mut g = Lcg(7);
        let mut m = Mem::default();
        for i in 0..300 {
            m.0.insert(format!("r{i:03}"), record(&mut g));
        }
        let mut ix = indexes();
        let mut live: Vec<(QuerySpec, LiveRows)> = specs()
            .into_iter()
            .map(|q| {
                let rows = run(&q, &mut ix, &m);
                assert_eq!(
                    rows.rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
                    model(&q, &m),
                    "{q:?}"
                );
                (q, LiveRows::new(rows))
            })
            .collect();
        let (mut rereads, mut changed) = (0, 0);
        for step in 0..2000 {
            let id = format!("r{:03}", g.next(400));
            let new = (g.next(6) != 0).then(|| record(&mut g));
            match &new {
                Some(f) => m.0.insert(id.clone(), f.clone()),
                None => m.0.remove(&id),
            };
            ix.update("tasks", &id, new.as_ref());
            for (q, rows) in live.iter_mut() {
                match rows.apply(q, &id, new.as_ref()) {
                    Step::Reread => {
                        rereads += 1;
                        *rows = LiveRows::new(run(q, &mut ix, &m));
                    }
                    Step::Changed => changed += 1,
                    Step::Unchanged => {}
                }
                assert_eq!(
                    rows.ids().collect::<Vec<_>>(),
                    model(q, &m),
                    "step {step}: {q:?}"
                );
            }
        }
        assert!(
            changed > 1000 && rereads > 10,
            "{changed} changes, {rereads} rereads"
        );
        // Paging with `after` walks the whole result exactly once, through the index.
        for mut q in specs() {
            let all = {
                let mut q = q.clone();
                q.limit = None;
                model(&q, &m)
            };
            q.limit = Some(4);
            let mut seen = Vec::new();
            loop {
                let page = run(&q, &mut ix, &m);
                let Some((_, last)) = page.rows.last() else {
                    break;
                };
                seen.extend(page.rows.iter().map(|r| r.1.clone()));
                let row = m.0.get(last).unwrap();
                let mut as_row = row.clone();
                as_row.insert("id".into(), json!(last));
                q = q.with_after(&Value::Object(as_row)).unwrap();
            }
            assert_eq!(seen, all, "{q:?}");
        }
    }
}
