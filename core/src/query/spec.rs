//! What a query asks for: conditions on fields, an order, a limit and a keyset cursor, and
//! how the JS API's `{where, orderBy, limit, after}` becomes one (typed errors otherwise).
//!
//! A `where` value is an equality, unless it is an object whose keys are all operators
//! (`eq`, `in`, `gt`, `gte`, `lt`, `lte`, `between`, `prefix`): `{done: false}`,
//! `{updatedAt: {gte: 10, lt: 20}}`, `{tag: {in: ['a', 'b']}}`, `{title: {prefix: 'Re'}}`.
//! Ranges compare only values of the bound's kind (`{gt: 5}` matches numbers above 5, never
//! strings); `between: [a, b]` includes both ends.

use super::key::{compare_values, KeyPart};
use crate::protocol::Fields;
use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

/// The `code` of a malformed query.
pub const INVALID_QUERY: &str = "invalid_query";

/// A malformed query, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{INVALID_QUERY}: {}", self.0)
    }
}

impl std::error::Error for QueryError {}

/// One end of a range.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub value: Value,
    pub inclusive: bool,
}

/// What one field must satisfy.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Eq(Value),
    In(Vec<Value>),
    Range {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
    Prefix(String),
}

impl Condition {
    /// Whether `value` (`None`: the field is missing) satisfies the condition.
    pub fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Condition::Eq(want) => value == Some(want),
            Condition::In(set) => value.is_some_and(|v| set.contains(v)),
            Condition::Prefix(p) => {
                matches!(value, Some(Value::String(s)) if s.starts_with(p.as_str()))
            }
            Condition::Range { lower, upper } => {
                let Some(v) = value else { return false };
                let kind = KeyPart::of(Some(v));
                let within = |b: &Bound, below: bool| {
                    if std::mem::discriminant(&KeyPart::of(Some(&b.value)))
                        != std::mem::discriminant(&kind)
                    {
                        return false;
                    }
                    match compare_values(Some(v), Some(&b.value)) {
                        Ordering::Equal => b.inclusive,
                        Ordering::Less => below,
                        Ordering::Greater => !below,
                    }
                };
                lower.as_ref().is_none_or(|b| within(b, false))
                    && upper.as_ref().is_none_or(|b| within(b, true))
            }
        }
    }
}

/// The order of a query's rows: by a field, ties by id; `desc` reverses both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub field: String,
    pub desc: bool,
}

/// A query over one collection's live (not deleted) records.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySpec {
    pub collection: String,
    /// Every condition must hold; one per field, in the order given.
    pub conditions: Vec<(String, Condition)>,
    /// `None`: id order.
    pub order: Option<Order>,
    pub limit: Option<usize>,
    /// Keyset paging: only rows after this one in the query's order (the last row of the
    /// previous page: its `id` and order field are what count).
    pub after: Option<(Option<Value>, String)>,
}

const OPERATORS: [&str; 8] = ["eq", "in", "gt", "gte", "lt", "lte", "between", "prefix"];

fn bad(message: String) -> QueryError {
    QueryError(message)
}

/// Whether ranges may use `v` as a bound: scalars that order naturally.
fn scalar_bound(field: &str, op: &str, v: &Value) -> Result<Value, QueryError> {
    match v {
        Value::Number(_) | Value::String(_) | Value::Bool(_) => Ok(v.clone()),
        _ => Err(bad(format!(
            "`where.{field}.{op}` must be a number, string or boolean"
        ))),
    }
}

fn condition(field: &str, value: &Value) -> Result<Condition, QueryError> {
    let Value::Object(ops) = value else {
        return Ok(Condition::Eq(value.clone()));
    };
    if ops.is_empty() || !ops.keys().all(|k| OPERATORS.contains(&k.as_str())) {
        return Ok(Condition::Eq(value.clone()));
    }
    let (mut lower, mut upper) = (None, None);
    let mut result = None;
    for (op, v) in ops {
        let set = |slot: &mut Option<Bound>, inclusive: bool| -> Result<(), QueryError> {
            if slot.is_some() {
                return Err(bad(format!(
                    "`where.{field}` has two lower or two upper bounds"
                )));
            }
            *slot = Some(Bound {
                value: scalar_bound(field, op, v)?,
                inclusive,
            });
            Ok(())
        };
        match op.as_str() {
            "eq" => result = Some(Condition::Eq(v.clone())),
            "in" => match v {
                Value::Array(list) => result = Some(Condition::In(list.clone())),
                _ => return Err(bad(format!("`where.{field}.in` must be an array"))),
            },
            "prefix" => match v {
                Value::String(p) => result = Some(Condition::Prefix(p.clone())),
                _ => return Err(bad(format!("`where.{field}.prefix` must be a string"))),
            },
            "gt" => set(&mut lower, false)?,
            "gte" => set(&mut lower, true)?,
            "lt" => set(&mut upper, false)?,
            "lte" => set(&mut upper, true)?,
            _ => match v.as_array().map(Vec::as_slice) {
                Some([a, b]) => {
                    lower = Some(Bound {
                        value: scalar_bound(field, "between", a)?,
                        inclusive: true,
                    });
                    upper = Some(Bound {
                        value: scalar_bound(field, "between", b)?,
                        inclusive: true,
                    });
                }
                _ => return Err(bad(format!("`where.{field}.between` must be [low, high]"))),
            },
        }
    }
    let ranged = lower.is_some() || upper.is_some();
    match result {
        Some(_) if ranged || ops.len() > 1 => Err(bad(format!(
            "`where.{field}`: `eq`, `in` and `prefix` cannot be combined with other operators"
        ))),
        Some(c) => Ok(c),
        None => Ok(Condition::Range { lower, upper }),
    }
}

impl QuerySpec {
    /// Every live record of `collection`, in id order.
    pub fn all(collection: &str) -> QuerySpec {
        QuerySpec {
            collection: collection.to_owned(),
            conditions: Vec::new(),
            order: None,
            limit: None,
            after: None,
        }
    }

    /// Reads `where` (an object of fields) into conditions.
    pub fn with_where(mut self, filter: &Fields) -> Result<QuerySpec, QueryError> {
        for (field, value) in filter {
            if field == "id" {
                return Err(bad("`where.id`: use get() to read one record".into()));
            }
            self.conditions
                .push((field.clone(), condition(field, value)?));
        }
        Ok(self)
    }

    /// Reads `after`: the last row of the previous page (`{id, ...fields}`).
    pub fn with_after(mut self, row: &Value) -> Result<QuerySpec, QueryError> {
        let Some(id) = row.get("id").and_then(Value::as_str) else {
            return Err(bad(
                "`after` must be a row of the previous page (an object with its `id`)".into(),
            ));
        };
        let value = self.order.as_ref().and_then(|o| row.get(&o.field)).cloned();
        self.after = Some((value, id.to_owned()));
        Ok(self)
    }

    /// Whether a record with these fields belongs in the result (paging aside).
    pub fn matches(&self, fields: &Fields) -> bool {
        self.conditions
            .iter()
            .all(|(f, c)| c.matches(fields.get(f)))
    }

    /// The row's place in the query's order (ascending; `desc` is applied by the callers).
    pub fn sort_key(&self, id: &str, fields: &Fields) -> (KeyPart, String) {
        let part = match &self.order {
            Some(o) => KeyPart::of(fields.get(&o.field)),
            None => KeyPart::Null,
        };
        (part, id.to_owned())
    }

    /// Compares two sort keys in the query's direction.
    pub fn cmp_keys(&self, a: &(KeyPart, String), b: &(KeyPart, String)) -> Ordering {
        let o = a.cmp(b);
        if self.order.as_ref().is_some_and(|o| o.desc) {
            o.reverse()
        } else {
            o
        }
    }

    /// Whether a row with this sort key comes after the `after` cursor (always, without one).
    pub fn after_cursor(&self, key: &(KeyPart, String)) -> bool {
        match &self.after {
            None => true,
            Some((v, id)) => {
                let cursor = (KeyPart::of(v.as_ref()), id.clone());
                self.cmp_keys(key, &cursor) == Ordering::Greater
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(w: Value) -> Result<QuerySpec, QueryError> {
        QuerySpec::all("notes").with_where(w.as_object().unwrap())
    }

    #[test]
    fn operators_and_equalities_are_read() {
        let q = spec(json!({"done": false, "at": {"gte": 10, "lt": 20}, "tag": {"in": ["a"]}, "t": {"prefix": "Re"}, "meta": {"x": 1}}))
            .unwrap();
        let f = |v: Value| v.as_object().unwrap().clone();
        assert!(q.matches(&f(
            json!({"done": false, "at": 10, "tag": "a", "t": "Re: x", "meta": {"x": 1}})
        )));
        assert!(!q.matches(&f(
            json!({"done": false, "at": 20, "tag": "a", "t": "Re: x", "meta": {"x": 1}})
        )));
        assert!(!q.matches(&f(
            json!({"done": false, "at": 12, "tag": "b", "t": "Re: x", "meta": {"x": 1}})
        )));
        assert!(!q.matches(&f(
            json!({"done": false, "at": 12, "tag": "a", "t": "re", "meta": {"x": 1}})
        )));
        // A range compares only values of its bound's kind.
        let q = spec(json!({"at": {"gt": 5}})).unwrap();
        assert!(!q.matches(&f(json!({"at": "zzz"}))));
        assert!(!q.matches(&f(json!({}))));
        let q = spec(json!({"at": {"between": [1, 3]}})).unwrap();
        assert!(q.matches(&f(json!({"at": 1}))) && q.matches(&f(json!({"at": 3}))));
    }

    #[test]
    fn malformed_queries_are_typed_errors() {
        for bad in [
            json!({"at": {"in": 3}}),
            json!({"at": {"gt": [1]}}),
            json!({"at": {"gt": 1, "gte": 2}}),
            json!({"at": {"between": [1]}}),
            json!({"at": {"prefix": 1}}),
            json!({"at": {"eq": 1, "gt": 0}}),
            json!({"id": "x"}),
        ] {
            assert!(spec(bad.clone()).is_err(), "{bad} is refused");
        }
        assert!(QuerySpec::all("n").with_after(&json!({"x": 1})).is_err());
    }
}
