//! Answering a query: through the declared index that serves it best, else by a scan of
//! the collection. Either way every returned row is checked against every condition on the
//! record's current fields, so an index can only make a query faster, never wrong.
//!
//! An index serves a query when its leading fields have `eq`/`in` conditions (each `in`
//! value is one scan) and the next one has a range or `prefix`, or is the `orderBy` field.
//! A scan whose entries come in the query's order (the index is exactly the equality fields
//! plus the order field) stops at `limit` and starts at the `after` cursor; other scans are
//! collected and sorted.

use super::index::{IndexDecl, Indexes};
use super::key::KeyPart;
use super::spec::{Condition, QuerySpec};
use crate::protocol::Fields;
use crate::replica::Replica;
use std::ops::Bound as B;

/// Where a query's rows come from: the live (not deleted) records of a collection.
pub trait Records {
    /// Every live record of `collection`: id and fields.
    fn live<'a>(
        &'a self,
        collection: &'a str,
    ) -> Box<dyn Iterator<Item = (&'a str, &'a Fields)> + 'a>;
    /// One live record's fields.
    fn get(&self, collection: &str, id: &str) -> Option<&Fields>;
}

impl Records for Replica {
    fn live<'a>(
        &'a self,
        collection: &'a str,
    ) -> Box<dyn Iterator<Item = (&'a str, &'a Fields)> + 'a> {
        Box::new(
            self.live_records(collection)
                .map(|r| (r.id.as_str(), &r.state.fields)),
        )
    }

    fn get(&self, collection: &str, id: &str) -> Option<&Fields> {
        self.record(collection, id)
            .filter(|r| !r.state.deleted)
            .map(|r| &r.state.fields)
    }
}

/// A query's rows: sort keys with ids, in the query's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub rows: Vec<(KeyPart, String)>,
    /// No matching row exists beyond `rows` (false when `limit` cut the result).
    pub complete: bool,
}

/// The smallest key part of the kind ranked `rank` (see `KeyPart`).
fn floor(rank: u8) -> KeyPart {
    match rank {
        0 => KeyPart::Null,
        1 => KeyPart::Bool(false),
        2 => KeyPart::Number(f64::NEG_INFINITY),
        3 => KeyPart::Text(String::new()),
        4 => KeyPart::Array,
        5 => KeyPart::Object,
        _ => KeyPart::Max,
    }
}

/// The first string after every string starting with `p` (`None`: no string is).
fn after_prefix(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub(super) type Key = (Vec<KeyPart>, String);

/// The scan bounds of one equality prefix: `[lo, hi)` over the index's entries.
fn bounds(prefix: &[KeyPart], next: Option<&Condition>) -> (Key, Key) {
    let with = |extra: &[KeyPart]| {
        let mut k = prefix.to_vec();
        k.extend_from_slice(extra);
        (k, String::new())
    };
    match next {
        Some(Condition::Range { lower, upper }) => {
            // A range holds values of its bounds' kind only.
            let kind = KeyPart::of(Some(
                &lower
                    .as_ref()
                    .or(upper.as_ref())
                    .expect("a range has a bound")
                    .value,
            ))
            .rank();
            let lo = match lower {
                Some(b) if b.inclusive => with(&[KeyPart::of(Some(&b.value))]),
                Some(b) => with(&[KeyPart::of(Some(&b.value)), KeyPart::Max]),
                None => with(&[floor(kind)]),
            };
            let hi = match upper {
                Some(b) if b.inclusive => with(&[KeyPart::of(Some(&b.value)), KeyPart::Max]),
                Some(b) => with(&[KeyPart::of(Some(&b.value))]),
                None => with(&[floor(kind + 1)]),
            };
            (lo, hi)
        }
        Some(Condition::Prefix(p)) => (
            with(&[KeyPart::Text(p.clone())]),
            with(&[after_prefix(p).map_or(floor(4), KeyPart::Text)]),
        ),
        _ => (with(&[]), with(&[KeyPart::Max])),
    }
}

/// The index chosen for a query: how many leading equality fields it serves, whether the
/// next field's range or prefix too, and whether its entries come in the query's order.
pub(super) struct Choice {
    pub(super) index: usize,
    pub(super) decl: IndexDecl,
    /// Whether the entries of each scan come in the query's order (a scan can stop at
    /// `limit` and start at the `after` cursor).
    pub(super) ordered: bool,
    /// `[lo, hi]` bounds of each scan (one per combination of the `in` values), in the
    /// entry order `(key parts, id)`.
    pub(super) scans: Vec<(B<Key>, B<Key>)>,
}

/// The declared index that serves `spec` best (most conditions served, then one that yields
/// the query's order) and the scans it takes; `None`: none serves it, scan the collection.
pub(super) fn choose(
    spec: &QuerySpec,
    // `dyn`: one copy of this function in the wasm module for both callers (3.3 KB each).
    decls: &mut dyn Iterator<Item = (usize, &IndexDecl)>,
) -> Option<Choice> {
    let condition = |f: &str| spec.conditions.iter().find(|(n, _)| n == f).map(|(_, c)| c);
    // (position, declaration, equality fields served, range served, ordered, score)
    type Candidate<'d> = (usize, &'d IndexDecl, usize, bool, bool, (usize, bool));
    let mut best: Option<Candidate> = None;
    for (i, decl) in decls {
        let eq = decl
            .fields
            .iter()
            .take_while(|f| matches!(condition(f), Some(Condition::Eq(_) | Condition::In(_))))
            .count();
        let next = decl.fields.get(eq);
        let ranged = next.is_some_and(|f| {
            matches!(
                condition(f),
                Some(Condition::Range { .. } | Condition::Prefix(_))
            )
        });
        let ordered = match &spec.order {
            None => decl.fields.len() == eq,
            Some(o) => decl.fields.len() == eq + 1 && next == Some(&o.field),
        };
        let useful = eq > 0 || ranged || (ordered && spec.order.is_some());
        let score = (eq + ranged as usize, ordered);
        if useful && best.as_ref().is_none_or(|b| score > b.5) {
            best = Some((i, decl, eq, ranged, ordered, score));
        }
    }
    let (index, decl, eq, ranged, ordered, _) = best?;
    // One scan per combination of the equality values (`in` lists multiply).
    let mut prefixes: Vec<Vec<KeyPart>> = vec![Vec::new()];
    for f in &decl.fields[..eq] {
        let values = match condition(f) {
            Some(Condition::Eq(v)) => vec![v.clone()],
            Some(Condition::In(list)) => list.clone(),
            _ => unreachable!("the equality prefix has eq/in conditions"),
        };
        prefixes = prefixes
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push(KeyPart::of(Some(v)));
                    p
                })
            })
            .collect();
    }
    let next = ranged.then(|| condition(&decl.fields[eq])).flatten();
    let desc = spec.order.as_ref().is_some_and(|o| o.desc);
    let mut scans = Vec::new();
    for prefix in prefixes {
        let (mut lo, mut hi) = bounds(&prefix, next);
        let (mut lo_b, mut hi_b) = (true, false); // lo included, hi excluded
        if let (true, Some((v, id))) = (ordered, &spec.after) {
            // Start at the cursor: the entry keys of an ordered scan are prefix + order value.
            let mut k = prefix.clone();
            if spec.order.is_some() {
                k.push(KeyPart::of(v.as_ref()));
            }
            let cursor = (k, id.clone());
            if desc && cursor < hi {
                (hi, hi_b) = (cursor, false);
            } else if !desc && cursor >= lo {
                (lo, lo_b) = (cursor, false);
            }
        }
        if lo > hi || (lo == hi && !(lo_b && hi_b)) {
            continue;
        }
        let lo = if lo_b {
            B::Included(lo)
        } else {
            B::Excluded(lo)
        };
        let hi = if hi_b {
            B::Included(hi)
        } else {
            B::Excluded(hi)
        };
        scans.push((lo, hi));
    }
    Some(Choice {
        index,
        decl: decl.clone(),
        ordered,
        scans,
    })
}

/// Runs `spec` over `records`, through `indexes` when one serves it.
pub fn run(spec: &QuerySpec, indexes: &mut Indexes, records: &impl Records) -> Rows {
    let Some(choice) = choose(spec, &mut indexes.of(&spec.collection)) else {
        return scan(spec, records);
    };
    let desc = spec.order.as_ref().is_some_and(|o| o.desc);
    let built = indexes.built(choice.index, records.live(&spec.collection));
    let mut found: Vec<(KeyPart, String)> = Vec::new();
    let mut cut = false;
    for range in choice.scans {
        let entries = built.entries.range(range);
        let entries: Box<dyn Iterator<Item = &Key>> = if desc {
            Box::new(entries.rev())
        } else {
            Box::new(entries)
        };
        let mut taken = 0;
        for (_, id) in entries {
            let Some(fields) = records.get(&spec.collection, id) else {
                continue;
            };
            if !take(spec, id, fields, &mut found) {
                continue;
            }
            taken += 1;
            if choice.ordered && spec.limit.is_some_and(|l| taken >= l) {
                cut = true;
                break;
            }
        }
    }
    finish(spec, found, cut)
}

/// Adds the row to `found` when it meets every condition and lies after the cursor.
pub(super) fn take(
    spec: &QuerySpec,
    id: &str,
    fields: &Fields,
    found: &mut Vec<(KeyPart, String)>,
) -> bool {
    let key = spec.sort_key(id, fields);
    if !spec.matches(fields) || !spec.after_cursor(&key) {
        return false;
    }
    found.push(key);
    true
}

/// The scan without an index: every live record of the collection.
fn scan(spec: &QuerySpec, records: &impl Records) -> Rows {
    let found = records
        .live(&spec.collection)
        .filter(|(_, f)| spec.matches(f))
        .map(|(id, f)| spec.sort_key(id, f))
        .filter(|k| spec.after_cursor(k))
        .collect();
    finish(spec, found, false)
}

/// Sorts, cuts at the limit and says whether anything may lie beyond.
pub(super) fn finish(spec: &QuerySpec, mut found: Vec<(KeyPart, String)>, cut: bool) -> Rows {
    crate::sorting::sort_stable_by(&mut found, |a, b| spec.cmp_keys(a, b));
    let limit = spec.limit.unwrap_or(usize::MAX);
    let mut complete = !cut;
    if found.len() > limit {
        found.truncate(limit);
        complete = false;
    } else if found.len() == limit && cut {
        complete = false;
    }
    Rows {
        rows: found,
        complete,
    }
}
