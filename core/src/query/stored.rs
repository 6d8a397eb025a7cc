//! The declared indexes as keys a store can order: every stored record row carries one key
//! per index of its collection (`x` in the browser's `records` rows, under one multi-entry
//! IndexedDB index), so a query asked before the records are loaded reads only the rows of
//! its first page (see ARCHITECTURE.md "The first page before the records load").
//!
//! A key is `[index name, [parts...], id]`, each part a kind tag then a value: `[0, 0]` for
//! missing/`null`, `[1, 0|1]` booleans, `[2, n]` numbers, `[3, s]` strings, `[4, 0]` arrays,
//! `[5, 0]` objects, and `[6]` for [`KeyPart::Max`] (bounds only). IndexedDB compares arrays
//! element by element, a shorter prefix first, so these keys order exactly as the in-memory
//! entries `(Vec<KeyPart>, id)` do — the one difference being strings, which IndexedDB
//! compares by UTF-16 code unit and Rust by code point (they disagree only between
//! characters above U+FFFF and U+E000–U+FFFF). Booleans are tagged numbers because
//! IndexedDB keys cannot be booleans.

use super::index::IndexDecl;
use super::key::KeyPart;
use super::plan::{choose, finish, take, Key, Rows};
use super::spec::QuerySpec;
use crate::protocol::Fields;
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::ops::Bound as B;

/// The stable name of an index in stored keys: `["collection",["field",...]]` as JSON, so
/// declaring another index or reordering the declarations renames none.
pub fn index_name(decl: &IndexDecl) -> String {
    json!([decl.collection, decl.fields]).to_string()
}

/// What every stored row's keys were built from: the names of all declared indexes, sorted.
/// A store whose rows were indexed under another signature must be re-indexed before its
/// index answers a query.
pub fn signature(decls: &[IndexDecl]) -> String {
    let mut names: Vec<String> = decls.iter().map(index_name).collect();
    names.sort();
    json!(names).to_string()
}

fn push_part(part: &KeyPart, out: &mut Vec<Value>) {
    let (tag, value) = match part {
        KeyPart::Null => (0, json!(0)),
        KeyPart::Bool(b) => (1, json!(*b as u8)),
        KeyPart::Number(n) => (2, json!(n)),
        KeyPart::Text(s) => (3, json!(s)),
        KeyPart::Array => (4, json!(0)),
        KeyPart::Object => (5, json!(0)),
        KeyPart::Max => {
            out.push(json!(6));
            return;
        }
    };
    out.push(json!(tag));
    out.push(value);
}

/// The stored key of an entry (or a bound) `(parts, id)` of the index named `name`.
pub fn stored_key(name: &str, parts: &[KeyPart], id: &str) -> Value {
    let mut flat = Vec::with_capacity(parts.len() * 2);
    for p in parts {
        push_part(p, &mut flat);
    }
    json!([name, flat, id])
}

/// The keys a live record's row carries: one per declared index of its collection (none for
/// a deleted record, which no query returns).
pub fn row_keys(decls: &[IndexDecl], collection: &str, id: &str, fields: &Fields) -> Vec<Value> {
    decls
        .iter()
        .filter(|d| d.collection == collection)
        .map(|d| {
            let parts: Vec<KeyPart> = d
                .fields
                .iter()
                .map(|f| KeyPart::of(fields.get(f)))
                .collect();
            stored_key(&index_name(d), &parts, id)
        })
        .collect()
}

/// One key range of a stored index, as IndexedDB's `IDBKeyRange.bound(lo, hi, lo_open,
/// hi_open)` takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRange {
    pub lo: Value,
    pub lo_open: bool,
    pub hi: Value,
    pub hi_open: bool,
}

/// How a store answers a query from its index: each range read in the query's order
/// (`desc`: from the top), stopping once `limit` rows of it met every condition.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPlan {
    pub ranges: Vec<StoredRange>,
    pub desc: bool,
    pub limit: usize,
}

/// The plan for answering `spec` from the stored index keys, when a declared index yields its
/// rows in order and it has a `limit` (so the read is bounded by what it returns). `None`:
/// no such index; the query waits for the records.
pub fn stored_plan(spec: &QuerySpec, decls: &[IndexDecl]) -> Option<StoredPlan> {
    let limit = spec.limit?;
    let mut own = decls
        .iter()
        .enumerate()
        .filter(|(_, d)| d.collection == spec.collection);
    let choice = choose(spec, &mut own)?;
    if !choice.ordered {
        return None;
    }
    let name = index_name(&choice.decl);
    let end = |b: &B<Key>| match b {
        B::Included((parts, id)) => (stored_key(&name, parts, id), false),
        B::Excluded((parts, id)) => (stored_key(&name, parts, id), true),
        B::Unbounded => unreachable!("index scans are bounded"),
    };
    let ranges = choice
        .scans
        .iter()
        .map(|(lo, hi)| {
            let ((lo, lo_open), (hi, hi_open)) = (end(lo), end(hi));
            StoredRange {
                lo,
                lo_open,
                hi,
                hi_open,
            }
        })
        .collect();
    Some(StoredPlan {
        ranges,
        desc: spec.order.as_ref().is_some_and(|o| o.desc),
        limit,
    })
}

/// Collects a query's page from the rows a store read along a [`StoredPlan`]: each row is
/// checked against every condition on its decoded fields (a stale or foreign key can make
/// a read slower, never a row wrong).
pub struct StoredPage<'a> {
    spec: &'a QuerySpec,
    found: Vec<(KeyPart, String)>,
    cut: bool,
}

impl<'a> StoredPage<'a> {
    pub fn new(spec: &'a QuerySpec) -> StoredPage<'a> {
        StoredPage {
            spec,
            found: Vec::new(),
            cut: false,
        }
    }

    /// Offers one row of the range being read; true when it belongs to the page.
    pub fn offer(&mut self, id: &str, fields: &Fields) -> bool {
        take(self.spec, id, fields, &mut self.found)
    }

    /// A range's read stopped at the limit (rows may lie beyond it).
    pub fn cut(&mut self) {
        self.cut = true;
    }

    /// The page: the ids in the query's order, cut at its limit.
    pub fn finish(self) -> Rows {
        finish(self.spec, self.found, self.cut)
    }
}

/// IndexedDB's key order (its `indexedDB.cmp`) over the keys [`stored_key`] makes: numbers
/// before strings before arrays; arrays element by element, a prefix first; strings by
/// UTF-16 code unit. Panics on a value that is not such a key.
pub fn compare_stored(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Array(_) => 2,
        other => panic!("not a stored key: {other}"),
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.encode_utf16().cmp(y.encode_utf16()),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare_stored(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Reads `plan` the way a store reads it from its index, over `rows` (id and fields of the
/// live records of the query's collection): every row's keys in key order, each range from
/// its end in the query's direction, stopping at `limit` rows that meet the query. The
/// memory store's answer, which the simulation checks against the brute-force model.
pub fn read_plan<'r>(
    spec: &QuerySpec,
    decls: &[IndexDecl],
    plan: &StoredPlan,
    rows: impl Iterator<Item = (&'r str, &'r Fields)>,
) -> Rows {
    let mut keyed: Vec<(Value, &str, &Fields)> = rows
        .flat_map(|(id, f)| {
            row_keys(decls, &spec.collection, id, f)
                .into_iter()
                .map(move |k| (k, id, f))
        })
        .collect();
    keyed.sort_by(|a, b| compare_stored(&a.0, &b.0));
    let mut page = StoredPage::new(spec);
    for r in &plan.ranges {
        let inside = |k: &Value| {
            let lo = compare_stored(k, &r.lo);
            let hi = compare_stored(k, &r.hi);
            (lo == Ordering::Greater || (lo == Ordering::Equal && !r.lo_open))
                && (hi == Ordering::Less || (hi == Ordering::Equal && !r.hi_open))
        };
        let mut hits: Vec<&(Value, &str, &Fields)> =
            keyed.iter().filter(|(k, ..)| inside(k)).collect();
        if plan.desc {
            hits.reverse();
        }
        let mut taken = 0;
        for (_, id, f) in hits {
            if page.offer(id, f) {
                taken += 1;
                if taken >= plan.limit {
                    page.cut();
                    break;
                }
            }
        }
    }
    page.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{run, Indexes, Order, Records};

    fn parts(values: &[Value]) -> Vec<KeyPart> {
        values.iter().map(|v| KeyPart::of(Some(v))).collect()
    }

    #[test]
    fn stored_keys_order_as_the_entries_they_stand_for() {
        let values = [
            json!(null),
            json!(false),
            json!(true),
            json!(-3.5),
            json!(0),
            json!(2),
            json!(""),
            json!("a"),
            json!("ab"),
            json!("b"),
            json!([1]),
            json!({"k": 1}),
        ];
        let mut entries: Vec<Key> = Vec::new();
        for a in &values {
            for b in &values {
                for id in ["", "a", "b"] {
                    entries.push((parts(&[a.clone(), b.clone()]), id.to_owned()));
                    entries.push((parts(std::slice::from_ref(a)), id.to_owned()));
                }
            }
            // A bound past every entry with this first part, and one past everything.
            entries.push((vec![KeyPart::of(Some(a)), KeyPart::Max], String::new()));
        }
        entries.push((vec![KeyPart::Max], String::new()));
        for x in &entries {
            for y in &entries {
                let stored =
                    compare_stored(&stored_key("i", &x.0, &x.1), &stored_key("i", &y.0, &y.1));
                assert_eq!(stored, x.cmp(y), "{x:?} vs {y:?}");
            }
        }
    }

    struct Rows(Vec<(String, Fields)>);

    impl Records for Rows {
        fn live<'a>(&'a self, _: &'a str) -> Box<dyn Iterator<Item = (&'a str, &'a Fields)> + 'a> {
            Box::new(self.0.iter().map(|(i, f)| (i.as_str(), f)))
        }
        fn get(&self, _: &str, id: &str) -> Option<&Fields> {
            self.0.iter().find(|(i, _)| i == id).map(|(_, f)| f)
        }
    }

    fn read_stored(
        spec: &QuerySpec,
        decls: &[IndexDecl],
        rows: &Rows,
        plan: &StoredPlan,
    ) -> Vec<String> {
        let rows = rows.0.iter().map(|(i, f)| (i.as_str(), f));
        read_plan(spec, decls, plan, rows)
            .rows
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    }

    #[test]
    fn a_page_read_from_stored_keys_is_the_page_the_replica_answers() {
        let decls = vec![
            IndexDecl {
                collection: "t".into(),
                fields: vec!["n".into()],
            },
            IndexDecl {
                collection: "t".into(),
                fields: vec!["who".into(), "n".into()],
            },
        ];
        let kinds = [json!(null), json!(true), json!("x"), json!(1.5)];
        let rows = Rows(
            (0..120)
                .map(|i: i64| {
                    let mut f = Fields::new();
                    if i % 7 != 0 {
                        f.insert(
                            "n".into(),
                            if i % 11 == 0 {
                                kinds[(i % 4) as usize].clone()
                            } else {
                                json!(i % 40)
                            },
                        );
                    }
                    f.insert("who".into(), json!(["ann", "bo", "cy"][(i % 3) as usize]));
                    f.insert("done".into(), json!(i % 2 == 0));
                    (format!("r{i:03}"), f)
                })
                .collect(),
        );
        let order = |desc| {
            Some(Order {
                field: "n".into(),
                desc,
            })
        };
        let mut specs = Vec::new();
        for desc in [false, true] {
            for limit in [1, 5, 50, 500] {
                let base = QuerySpec {
                    order: order(desc),
                    limit: Some(limit),
                    ..QuerySpec::all("t")
                };
                specs.push(base.clone());
                for filter in [
                    json!({"who": "bo"}),
                    json!({"who": {"in": ["ann", "cy"]}}),
                    json!({"n": {"gte": 10, "lt": 30}}),
                    json!({"who": "ann", "n": {"gt": 5}}),
                    json!({"who": "cy", "done": true}),
                    json!({"n": {"prefix": "x"}}),
                ] {
                    let filter = filter.as_object().unwrap().clone().into_iter().collect();
                    specs.push(base.clone().with_where(&filter).unwrap());
                }
                specs.push(
                    base.clone()
                        .with_after(&json!({"id": "r050", "n": 10}))
                        .unwrap(),
                );
            }
        }
        let mut served = 0;
        for spec in &specs {
            let Some(plan) = stored_plan(spec, &decls) else {
                continue;
            };
            served += 1;
            let mut indexes = Indexes::new(decls.clone());
            let want: Vec<String> = run(spec, &mut indexes, &rows)
                .rows
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            assert_eq!(read_stored(spec, &decls, &rows, &plan), want, "{spec:?}");
        }
        // Every spec but the unordered compound ones (`done` has no index) is served.
        assert!(served >= specs.len() * 3 / 4, "{served} of {}", specs.len());
    }

    #[test]
    fn a_query_without_a_limit_or_an_ordered_index_waits_for_the_records() {
        let decls = vec![IndexDecl {
            collection: "t".into(),
            fields: vec!["n".into()],
        }];
        let ordered = QuerySpec {
            order: Some(Order {
                field: "n".into(),
                desc: false,
            }),
            ..QuerySpec::all("t")
        };
        assert!(stored_plan(&ordered, &decls).is_none(), "no limit");
        let by_other = QuerySpec {
            order: Some(Order {
                field: "m".into(),
                desc: false,
            }),
            limit: Some(5),
            ..QuerySpec::all("t")
        };
        assert!(
            stored_plan(&by_other, &decls).is_none(),
            "no index yields its order"
        );
        assert!(stored_plan(
            &QuerySpec {
                limit: Some(5),
                ..ordered
            },
            &decls
        )
        .is_some());
    }

    #[test]
    fn a_query_is_planned_over_its_own_collections_indexes_only() {
        let decls = vec![
            IndexDecl {
                collection: "notes".into(),
                fields: vec!["title".into()],
            },
            IndexDecl {
                collection: "tasks".into(),
                fields: vec!["done".into(), "title".into()],
            },
        ];
        let by_title = |collection: &str| QuerySpec {
            order: Some(Order {
                field: "title".into(),
                desc: true,
            }),
            limit: Some(10),
            ..QuerySpec::all(collection)
        };
        // No index of `tasks` yields title order without `done`: the notes index must not.
        assert!(stored_plan(&by_title("tasks"), &decls).is_none());
        let notes = stored_plan(&by_title("notes"), &decls).expect("notes' own index");
        assert_eq!(notes.ranges[0].lo[0], json!(index_name(&decls[0])));
    }

    #[test]
    fn the_signature_names_the_declarations_in_any_order() {
        let a = IndexDecl {
            collection: "t".into(),
            fields: vec!["n".into()],
        };
        let b = IndexDecl {
            collection: "t".into(),
            fields: vec!["a".into(), "n".into()],
        };
        assert_eq!(
            signature(&[a.clone(), b.clone()]),
            signature(&[b.clone(), a.clone()])
        );
        assert_ne!(signature(std::slice::from_ref(&a)), signature(&[a, b]));
    }
}
