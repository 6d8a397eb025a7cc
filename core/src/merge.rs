//! Field-level three-way merge of two edits of one record against their common base.

use crate::protocol::Fields;
use crate::text_merge::merge_text;
use serde_json::Value;

/// The result of merging fields: the merged map, and the fields both sides changed
/// in ways that cannot be combined.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldMerge {
    pub merged: Fields,
    pub conflicting: Vec<String>,
}

/// Merges `local` and `server` against `base`, field by field.
///
/// A field changed on one side takes that side's value; changed the same way on both sides,
/// it takes that value; strings changed differently are merged as text when the edits do not
/// overlap; anything else is listed in `conflicting` (and keeps the server's value in
/// `merged`, so the caller can decide).
pub fn merge_fields(base: &Fields, local: &Fields, server: &Fields) -> FieldMerge {
    let mut merged = Fields::new();
    let mut conflicting = Vec::new();
    // The union of the three key sets, in order. (A sorted, de-duplicated `Vec` through the
    // engine's one sort rather than a `BTreeSet<&String>`: that set type was used nowhere
    // else and cost its own copy of the B-tree code in the WebAssembly module.)
    let mut keys: Vec<&String> = base
        .keys()
        .chain(local.keys())
        .chain(server.keys())
        .collect();
    crate::sorting::sort_stable_by(&mut keys, |a, b| a.cmp(b));
    keys.dedup();
    for key in keys {
        let (b, l, s) = (base.get(key), local.get(key), server.get(key));
        let value = if l == s || l == b {
            s.cloned()
        } else if s == b {
            l.cloned()
        } else if let Some(text) = merge_string_field(b, l, s) {
            Some(text)
        } else {
            conflicting.push(key.clone());
            s.cloned()
        };
        if let Some(v) = value {
            merged.insert(key.clone(), v);
        }
    }
    FieldMerge {
        merged,
        conflicting,
    }
}

/// Merges a string field both sides edited, when their edits do not overlap.
fn merge_string_field(
    base: Option<&Value>,
    local: Option<&Value>,
    server: Option<&Value>,
) -> Option<Value> {
    let base = match base {
        None => "",
        Some(v) => v.as_str()?,
    };
    let text = merge_text(base, local?.as_str()?, server?.as_str()?).ok()?;
    Some(Value::String(text))
}

/// The patch that turns `from` into `to`: changed and added fields, and `null` for removed ones.
pub fn diff_fields(from: &Fields, to: &Fields) -> Fields {
    let mut patch = Fields::new();
    for (k, v) in to {
        if from.get(k) != Some(v) {
            patch.insert(k.clone(), v.clone());
        }
    }
    for k in from.keys() {
        if !to.contains_key(k) {
            patch.insert(k.clone(), Value::Null);
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn disjoint_field_edits_merge() {
        let base = fields(json!({"title": "a", "body": "x", "n": 1}));
        let local = fields(json!({"title": "b", "body": "x", "n": 1}));
        let server = fields(json!({"title": "a", "body": "x", "n": 2, "tag": "t"}));
        let m = merge_fields(&base, &local, &server);
        assert!(m.conflicting.is_empty());
        assert_eq!(
            Value::Object(m.merged),
            json!({"title": "b", "body": "x", "n": 2, "tag": "t"})
        );
    }

    #[test]
    fn same_string_field_merges_as_text_or_conflicts() {
        let base = fields(json!({"body": "one two three"}));
        let ok = merge_fields(
            &base,
            &fields(json!({"body": "zero two three"})),
            &fields(json!({"body": "one two four"})),
        );
        assert_eq!(ok.merged["body"], json!("zero two four"));
        let clash = merge_fields(
            &base,
            &fields(json!({"body": "one 2 three"})),
            &fields(json!({"body": "one II three"})),
        );
        assert_eq!(clash.conflicting, vec!["body".to_string()]);
    }

    #[test]
    fn numbers_changed_on_both_sides_conflict() {
        let base = fields(json!({"n": 1}));
        let m = merge_fields(&base, &fields(json!({"n": 2})), &fields(json!({"n": 3})));
        assert_eq!(m.conflicting, vec!["n".to_string()]);
    }

    #[test]
    fn a_field_removed_on_one_side_is_removed() {
        let base = fields(json!({"a": 1, "b": 2}));
        let m = merge_fields(
            &base,
            &fields(json!({"a": 1})),
            &fields(json!({"a": 1, "b": 2, "c": 3})),
        );
        assert_eq!(Value::Object(m.merged), json!({"a": 1, "c": 3}));
    }

    #[test]
    fn diff_then_patch_round_trips() {
        let from = fields(json!({"a": 1, "b": 2}));
        let to = fields(json!({"a": 5, "c": 3}));
        let mut out = from.clone();
        crate::apply::apply_patch(&mut out, &diff_fields(&from, &to));
        assert_eq!(out, to);
    }
}
