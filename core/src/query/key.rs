//! How field values order, in queries, sorts and index keys alike: missing and `null`
//! first, then booleans, numbers, strings, arrays, objects. Within booleans, numbers and
//! strings the natural order; arrays all rank equal, as do objects (ties fall to the id).

use serde_json::Value;
use std::cmp::Ordering;

/// One field's value as an orderable index key part. `Max` orders after every value and
/// never appears in a stored key: it makes exclusive bounds ("everything starting with").
#[derive(Clone, Debug, PartialEq)]
pub enum KeyPart {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Array,
    Object,
    Max,
}

impl KeyPart {
    /// The key part of a field value (`None`: the field is missing, which orders as `null`).
    pub fn of(value: Option<&Value>) -> KeyPart {
        match value {
            None | Some(Value::Null) => KeyPart::Null,
            Some(Value::Bool(b)) => KeyPart::Bool(*b),
            Some(Value::Number(n)) => KeyPart::Number(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) => KeyPart::Text(s.clone()),
            Some(Value::Array(_)) => KeyPart::Array,
            Some(Value::Object(_)) => KeyPart::Object,
        }
    }

    pub(super) fn rank(&self) -> u8 {
        match self {
            KeyPart::Null => 0,
            KeyPart::Bool(_) => 1,
            KeyPart::Number(_) => 2,
            KeyPart::Text(_) => 3,
            KeyPart::Array => 4,
            KeyPart::Object => 5,
            KeyPart::Max => 6,
        }
    }
}

impl Eq for KeyPart {}

impl PartialOrd for KeyPart {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyPart {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (KeyPart::Bool(a), KeyPart::Bool(b)) => a.cmp(b),
            // JSON has no NaN, so the total order is the numeric one.
            (KeyPart::Number(a), KeyPart::Number(b)) => a.total_cmp(b),
            (KeyPart::Text(a), KeyPart::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Orders two field values (see the module docs) without building key parts.
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => KeyPart::of(a).cmp(&KeyPart::of(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_order_by_kind_then_naturally() {
        let ordered = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1.5),
            json!(2),
            json!(10),
            json!(""),
            json!("a"),
            json!("b"),
            json!([1]),
            json!({"x": 1}),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare_values(Some(&pair[0]), Some(&pair[1])),
                Ordering::Less
            );
            assert!(KeyPart::of(Some(&pair[0])) < KeyPart::of(Some(&pair[1])));
        }
        assert_eq!(compare_values(None, Some(&json!(null))), Ordering::Equal);
        assert!(KeyPart::of(Some(&json!({}))) < KeyPart::Max);
        // 1 and 1.0 are the same number.
        assert_eq!(
            compare_values(Some(&json!(1)), Some(&json!(1.0))),
            Ordering::Equal
        );
    }
}
