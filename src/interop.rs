//! Conversions at the JS edge, done once per call: JS values to the core's JSON fields
//! (rejecting what cannot be stored), the core's serializable values to JS (one
//! `JSON.parse` per value), and the core's errors to JS `Error`s with a `code`.

use ferry_core::protocol::Fields;
use ferry_core::{CoreError, ErrorCode};
use js_sys::{Array, Object, Reflect};
use serde::Serialize;
use serde_json::{Map, Number, Value};
use wasm_bindgen::{JsCast, JsValue};

/// Deepest nesting accepted in a record (guards against cycles).
const MAX_DEPTH: usize = 64;

/// A JS `Error` with `code` set.
pub fn js_error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

/// A core error as a JS `Error`; its `code` is [`ErrorCode::as_str`].
pub fn core_error(e: &CoreError) -> JsValue {
    js_error(e.code.as_str(), &e.message)
}

pub fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::new(ErrorCode::InvalidRecord, message)
}

/// A serializable value as a JS value.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    json_to_js(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

/// JSON text as a JS value.
pub fn json_to_js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap_or(JsValue::NULL)
}

/// The fields of a plain JS object; `what` names it in error messages.
pub fn fields_from_js(value: &JsValue, what: &str) -> Result<Fields, CoreError> {
    match value_from_js(value, what, 0)? {
        Value::Object(map) => Ok(map),
        _ => Err(invalid(format!("{what} must be a plain object"))),
    }
}

/// A record argument: a plain object with a string `id`; returns the id and the other fields.
pub fn record_from_js(value: &JsValue) -> Result<(String, Fields), CoreError> {
    let mut fields = fields_from_js(value, "record")?;
    match fields.remove("id") {
        Some(Value::String(id)) => Ok((id, fields)),
        Some(_) => Err(CoreError::new(
            ErrorCode::InvalidId,
            "record.id must be a string",
        )),
        None => Err(CoreError::new(
            ErrorCode::InvalidId,
            "the record has no `id` (a string is required)",
        )),
    }
}

/// A string argument.
pub fn string_arg(value: &JsValue, what: &str, code: ErrorCode) -> Result<String, CoreError> {
    value
        .as_string()
        .ok_or_else(|| CoreError::new(code, format!("{what} must be a string")))
}

fn value_from_js(value: &JsValue, at: &str, depth: usize) -> Result<Value, CoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "{at} is nested too deeply (or contains a cycle)"
        )));
    }
    if value.is_null() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = value.as_f64() {
        return number(n).ok_or_else(|| {
            invalid(format!(
                "{at} is {n}, which cannot be stored (use a finite number)"
            ))
        });
    }
    if let Some(s) = value.as_string() {
        return Ok(Value::String(s));
    }
    if Array::is_array(value) {
        let array: &Array = value.unchecked_ref();
        // The length comes from the app: `new Array(2 ** 32 - 1)` is a valid, empty-looking
        // array. Every element takes at least a byte of a record, so a longer array cannot
        // be stored; refuse it before walking it (and never allocate by its length).
        let length = array.length() as usize;
        if length > ferry_core::protocol::limits::MAX_RECORD_BYTES {
            return Err(invalid(format!(
                "{at} has {length} elements, more than a record can hold ({} bytes at most)",
                ferry_core::protocol::limits::MAX_RECORD_BYTES
            )));
        }
        let mut items = Vec::new();
        for (i, item) in array.iter().enumerate() {
            items.push(value_from_js(&item, &format!("{at}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if is_plain_object(value) {
        let mut map = Map::new();
        for entry in Object::entries(value.unchecked_ref()).iter() {
            let pair: Array = entry.unchecked_into();
            let key = pair.get(0).as_string().unwrap_or_default();
            let item = pair.get(1);
            if item.is_undefined() {
                continue; // as JSON does: an undefined property is absent
            }
            map.insert(
                key.clone(),
                value_from_js(&item, &format!("{at}.{key}"), depth + 1)?,
            );
        }
        return Ok(Value::Object(map));
    }
    let kind = value.js_typeof().as_string().unwrap_or_default();
    Err(invalid(format!(
        "{at} is a {kind} that cannot be stored; use JSON values (null, booleans, numbers, strings, arrays, plain objects)"
    )))
}

fn is_plain_object(value: &JsValue) -> bool {
    if !value.is_object() {
        return false;
    }
    let proto = Object::get_prototype_of(value);
    proto.is_null() || proto == Object::get_prototype_of(&Object::new())
}

fn number(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 {
        return Some(Value::Number(Number::from(n as i64)));
    }
    Number::from_f64(n).map(Value::Number)
}

/// A record as the app sees it, `{id, ...fields}`, serialized straight from the replica's
/// record (no copy of its fields): the same JSON as [`row_value`], keys in the same order.
pub struct RowRef<'a> {
    pub id: &'a str,
    pub fields: &'a Fields,
}

impl serde::Serialize for RowRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.fields.len() + 1))?;
        let mut id_written = false;
        for (key, value) in self.fields {
            // The fields are sorted by key; `id` goes where a sorted map would put it.
            if !id_written && key.as_str() >= "id" {
                id_written = true;
                if key == "id" {
                    // As in `row_value`, a field named `id` wins over the record's id.
                    map.serialize_entry("id", value)?;
                    continue;
                }
                map.serialize_entry("id", self.id)?;
            }
            map.serialize_entry(key, value)?;
        }
        if !id_written {
            map.serialize_entry("id", self.id)?;
        }
        map.end()
    }
}

/// A record as the app sees it: `{id, ...fields}`.
pub fn row_value(id: &str, fields: &Fields) -> Value {
    let mut map = Map::with_capacity(fields.len() + 1);
    map.insert("id".into(), Value::String(id.to_owned()));
    for (k, v) in fields {
        map.insert(k.clone(), v.clone());
    }
    Value::Object(map)
}
