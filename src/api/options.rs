//! Reading and checking the options of `Ferry.open`.

use crate::client::ClientOptions;
use crate::interop::js_error;
use crate::transport::http_timeout_default;
use ferry_core::policy::Policy;
use ferry_core::priority::Priority;
use ferry_core::query::IndexDecl;
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// The `code` of an error in the options.
pub const INVALID_OPTIONS: &str = "invalid_options";

fn bad(message: &str) -> JsValue {
    js_error(INVALID_OPTIONS, &format!("Ferry.open: {message}"))
}

fn field(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

fn optional_function(options: &JsValue, name: &str) -> Result<Option<Function>, JsValue> {
    let value = field(options, name);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .dyn_into::<Function>()
        .map(Some)
        .map_err(|_| bad(&format!("`{name}` must be a function")))
}

/// Checks `Ferry.open`'s argument.
pub fn parse(options: &JsValue) -> Result<ClientOptions, JsValue> {
    if !options.is_object() {
        return Err(bad(
            "pass an options object: {name, url, collections, getToken?}",
        ));
    }
    let name = field(options, "name")
        .as_string()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("`name` must be a non-empty string"))?;
    let url = field(options, "url")
        .as_string()
        .ok_or_else(|| bad("`url` must be the sync server's base URL, e.g. '/v1'"))?;
    let collections_value = field(options, "collections");
    if !collections_value.is_object() {
        return Err(bad(
            "`collections` must be an object such as {notes: {policy: 'merge-fields'}}",
        ));
    }
    let mut collections = Vec::new();
    let mut indexes = Vec::new();
    let mut priorities = Vec::new();
    for key in Object::keys(collections_value.unchecked_ref::<Object>()).iter() {
        let name = key.as_string().unwrap_or_default();
        indexes.extend(parse_indexes(
            &name,
            &field(&field(&collections_value, &name), "indexes"),
        )?);
        let policy_value = field(&field(&collections_value, &name), "policy");
        let policy = match policy_value.as_string() {
            None if policy_value.is_undefined() => Policy::default(),
            Some(p) => Policy::parse(&p).ok_or_else(|| {
                bad(&format!("collection `{name}`: unknown policy `{p}` (use merge-fields, last-writer-wins or server-wins-review)"))
            })?,
            None => return Err(bad(&format!("collection `{name}`: `policy` must be a string"))),
        };
        let priority_value = field(&field(&collections_value, &name), "priority");
        match priority_value.as_string() {
            None if priority_value.is_undefined() => {}
            Some(p) => priorities.push((
                name.clone(),
                Priority::parse(&p).ok_or_else(|| {
                    bad(&format!("collection `{name}`: unknown priority `{p}` (use critical, normal or background)"))
                })?,
            )),
            None => return Err(bad(&format!("collection `{name}`: `priority` must be a string"))),
        }
        collections.push((name, policy));
    }
    if collections.is_empty() {
        return Err(bad("`collections` names no collection"));
    }
    let key = field(options, "encryptionKey");
    let live = field(options, "live").as_bool().unwrap_or(true);
    let timeout_ms = field(options, "requestTimeoutMs")
        .as_f64()
        .map_or(http_timeout_default(), |t| t.clamp(100.0, 600_000.0) as u32);
    let migration = parse_migration(options)?;
    Ok(ClientOptions {
        name,
        url,
        get_token: optional_function(options, "getToken")?,
        collections,
        indexes,
        encryption_key: (!key.is_undefined() && !key.is_null()).then_some(key),
        fetch: optional_function(options, "fetch")?,
        live,
        timeout_ms,
        early_open: crate::client::EarlyOpen::promise_in(options),
        migration,
        priorities,
    })
}

/// `collections.<name>.indexes`: fields and compound fields, e.g.
/// `['updatedAt', ['assignee', 'done']]`.
fn parse_indexes(collection: &str, value: &JsValue) -> Result<Vec<IndexDecl>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let wrong = || {
        bad(&format!(
            "collection `{collection}`: `indexes` must be an array of field names or arrays of field names, e.g. ['updatedAt', ['assignee', 'done']]"
        ))
    };
    if !js_sys::Array::is_array(value) {
        return Err(wrong());
    }
    let mut decls: Vec<IndexDecl> = Vec::new();
    for item in value.unchecked_ref::<js_sys::Array>().iter() {
        let fields: Vec<String> = if let Some(f) = item.as_string() {
            vec![f]
        } else if js_sys::Array::is_array(&item) {
            item.unchecked_ref::<js_sys::Array>()
                .iter()
                .map(|f| f.as_string().ok_or_else(wrong))
                .collect::<Result<_, _>>()?
        } else {
            return Err(wrong());
        };
        if fields.is_empty() || fields.iter().any(|f| f.is_empty() || f == "id") {
            return Err(bad(&format!(
                "collection `{collection}`: an index names one or more fields other than `id`"
            )));
        }
        let decl = IndexDecl {
            collection: collection.to_owned(),
            fields,
        };
        if !decls.contains(&decl) {
            decls.push(decl);
        }
    }
    Ok(decls)
}

/// `version` (the app's data version, a whole number) and `migrate` (its migration).
fn parse_migration(
    options: &JsValue,
) -> Result<Option<crate::client::migrate::Migration>, JsValue> {
    let migrate = optional_function(options, "migrate")?;
    let version = field(options, "version");
    if version.is_undefined() || version.is_null() {
        return match migrate {
            Some(_) => Err(bad(
                "`migrate` needs `version`: the data version the migration brings records to",
            )),
            None => Ok(None),
        };
    }
    let version = version
        .as_f64()
        .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= f64::from(u32::MAX))
        .ok_or_else(|| bad("`version` must be a whole number from 0 to 4294967295"))?;
    Ok(Some(crate::client::migrate::Migration {
        version: version as u32,
        migrate,
    }))
}
