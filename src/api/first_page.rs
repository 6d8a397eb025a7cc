//! A query's first page read from the stored index keys while the records still load
//! (`Ferry.open({ waitForRecords: false })`, see `pkg-template/index.js`): the core plans
//! the key ranges (`ferry_core::query::stored`), IndexedDB reads only the rows of those
//! ranges, and every row is checked against the query on its decoded fields. Used only when
//! the stored index signature is the declarations' own (every row carries current keys);
//! otherwise the query waits for the records, as it does without a serving index.

use super::ferry::{parse_query, Ferry};
use crate::interop::{json_to_js, RowRef};
use crate::store::read_index_range;
use crate::store::rows::plain_record;
use ferry_core::query::{signature, stored_plan, QuerySpec, StoredPage, StoredPlan};
use js_sys::{Array, Promise, Reflect};
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The most rows one read of a range asks for.
const MAX_BATCH: usize = 2_000;

/// A query's first page, planned from the open options; read it with [`FirstPage::read`].
#[wasm_bindgen]
pub struct FirstPage {
    spec: QuerySpec,
    plan: StoredPlan,
    signature: String,
}

/// The `code` of a call that needs the records while they still load.
pub const LOADING: &str = "loading";

#[wasm_bindgen]
impl Ferry {
    /// Throws what `Ferry.open` would throw for `options` (for the package entry, which
    /// resolves `open` before the engine has opened when `waitForRecords` is false).
    #[wasm_bindgen(js_name = checkOptions)]
    pub fn check_options(options: JsValue) -> Result<(), JsValue> {
        super::options::parse(&options).map(drop)
    }

    /// The error of `what` (e.g. `get()`) called while the records still load.
    #[wasm_bindgen(js_name = loadingError)]
    pub fn loading_error(what: &str) -> JsValue {
        crate::interop::js_error(
            LOADING,
            &format!(
                "{what} needs the records, which are still loading (Ferry.open with waitForRecords: false): await ferry.loaded first"
            ),
        )
    }

    /// The first page of `query(collection, options)` as the stored index can answer it, or
    /// `undefined` when no declared index yields its rows in order with a `limit` (or the
    /// database is encrypted). Throws what `query` throws for a malformed query or an
    /// unknown collection. For the package entry; apps call `query`.
    #[wasm_bindgen(js_name = planFirstPage)]
    pub fn plan_first_page(
        open_options: JsValue,
        collection: JsValue,
        options: Option<JsValue>,
    ) -> Result<Option<FirstPage>, JsValue> {
        let open = super::options::parse(&open_options)?;
        let collection = collection.as_string().unwrap_or_default();
        if !open.collections.iter().any(|(c, _)| *c == collection) {
            return Err(crate::interop::js_error(
                ferry_core::ErrorCode::UnknownCollection.as_str(),
                &format!("collection `{collection}` is not configured"),
            ));
        }
        let spec = parse_query(&collection, &options.unwrap_or(JsValue::UNDEFINED))?;
        if open.encryption_key.is_some() {
            return Ok(None);
        }
        Ok(stored_plan(&spec, &open.indexes).map(|plan| FirstPage {
            spec,
            plan,
            signature: signature(&open.indexes),
        }))
    }
}

#[wasm_bindgen]
impl FirstPage {
    /// Reads the page from `db`, whose stored index signature is `stored` (see
    /// `openForReading` in `commit.js`): resolves to the rows (as the live query shows
    /// them), or `undefined` when the stored keys were built under other declarations.
    pub fn read(&self, db: web_sys::IdbDatabase, stored: Option<String>) -> Promise {
        let (spec, plan, signature) =
            (self.spec.clone(), self.plan.clone(), self.signature.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            if stored.as_deref() != Some(signature.as_str()) {
                return Ok(JsValue::UNDEFINED);
            }
            read_page(&db, &spec, &plan).await
        })
    }
}

async fn read_page(
    db: &web_sys::IdbDatabase,
    spec: &QuerySpec,
    plan: &StoredPlan,
) -> Result<JsValue, JsValue> {
    let mut page = StoredPage::new(spec);
    let mut fields = HashMap::new();
    let field = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED);
    for range in &plan.ranges {
        let (mut lo, mut lo_open) = (json_to_js(&range.lo.to_string()), range.lo_open);
        let (mut hi, mut hi_open) = (json_to_js(&range.hi.to_string()), range.hi_open);
        let mut taken = 0;
        // The first read asks for exactly the rows still wanted (an index that serves every
        // condition needs no more); each later one asks for 4 times as many as the last,
        // since the rows in between failed a condition the index does not serve.
        let mut batch = 0usize;
        'range: loop {
            batch = match batch {
                0 => (plan.limit - taken).max(1),
                b => (b * 4).min(MAX_BATCH).max(plan.limit - taken),
            };
            let count = batch as u32;
            let read = read_index_range(db, &lo, lo_open, &hi, hi_open, plan.desc, count);
            let got = JsFuture::from(read).await?;
            for row in field(&got, "rows").unchecked_into::<Array>().iter() {
                let Some(record) = plain_record(&row) else {
                    continue;
                };
                if record.state.deleted || !page.offer(&record.id, &record.state.fields) {
                    continue;
                }
                fields.insert(record.id, record.state.fields);
                taken += 1;
                if taken >= plan.limit {
                    page.cut();
                    break 'range;
                }
            }
            if field(&got, "more").as_bool() != Some(true) {
                break;
            }
            // On past the last row read, in the read's direction.
            match plan.desc {
                true => (hi, hi_open) = (field(&got, "last"), true),
                false => (lo, lo_open) = (field(&got, "last"), true),
            }
        }
    }
    let found = page.finish();
    let rows: Vec<RowRef> = found
        .rows
        .iter()
        .filter_map(|(_, id)| fields.get(id).map(|f| RowRef { id, fields: f }))
        .collect();
    Ok(json_to_js(
        &serde_json::to_string(&rows).unwrap_or_default(),
    ))
}
