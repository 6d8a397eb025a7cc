//! `Ferry`: the handle an app opens — writes, reads, live queries and the sync views.

use super::js;
use super::observable::Observable;
use crate::client::{Client, LiveQuerySpec};
use crate::interop::{fields_from_js, js_error, record_from_js, string_arg, to_js};
use crate::subject::Subject;
use ferry_core::query::{Order, QuerySpec};
use ferry_core::replica::Change;
use ferry_core::{CoreError, ErrorCode};
use js_sys::{Promise, Reflect};
use serde_json::{json, Value};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// An open Ferry database.
#[wasm_bindgen]
pub struct Ferry {
    client: Rc<Client>,
}

fn collection_arg(value: &JsValue) -> Result<String, JsValue> {
    js(string_arg(
        value,
        "collection",
        ErrorCode::UnknownCollection,
    ))
}

fn id_arg(value: &JsValue) -> Result<String, JsValue> {
    js(string_arg(value, "id", ErrorCode::InvalidId))
}

#[wasm_bindgen]
impl Ferry {
    /// Opens (or creates) the local database and starts syncing from the leader tab.
    pub async fn open(
        #[wasm_bindgen(unchecked_param_type = "FerryOptions")] options: JsValue,
    ) -> Result<Ferry, JsValue> {
        let options = super::options::parse(&options)?;
        let client = js(Client::open(options).await)?;
        Ok(Ferry { client })
    }

    /// Creates or replaces a record (`{id, ...fields}`); visible now, resolves when durable.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] collection: JsValue,
        #[wasm_bindgen(unchecked_param_type = "FerryRecord")] record: JsValue,
    ) -> Result<Promise, JsValue> {
        let collection = collection_arg(&collection)?;
        let (id, fields) = js(record_from_js(&record))?;
        js(self.client.write(&collection, &id, Change::Put(fields)))
    }

    /// Sets some fields of an existing record (`null` removes a field).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn patch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] collection: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Partial<FerryRecord>")] fields: JsValue,
    ) -> Result<Promise, JsValue> {
        let (collection, id) = (collection_arg(&collection)?, id_arg(&id)?);
        let mut fields = js(fields_from_js(&fields, "fields"))?;
        if fields
            .remove("id")
            .is_some_and(|v| v != Value::String(id.clone()))
        {
            return Err(js_error(
                ErrorCode::InvalidId.as_str(),
                "patch cannot change a record's id",
            ));
        }
        js(self.client.write(&collection, &id, Change::Patch(fields)))
    }

    /// Deletes a record.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] collection: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<Promise, JsValue> {
        let (collection, id) = (collection_arg(&collection)?, id_arg(&id)?);
        js(self.client.write(&collection, &id, Change::Delete))
    }

    /// The record as it is now, or `undefined`.
    #[wasm_bindgen(unchecked_return_type = "FerryRecord | undefined")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] collection: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        let (collection, id) = (collection_arg(&collection)?, id_arg(&id)?);
        self.known(&collection)?;
        Ok(self
            .client
            .get(&collection, &id)
            .map_or(JsValue::UNDEFINED, |v| to_js(&v)))
    }

    /// A live list of records: `where` (equalities, `{in}`, ranges `{gt, gte, lt, lte,
    /// between}`, `{prefix}`), `orderBy`, `limit` and `after` (the last row of the previous
    /// page). Answered through a declared index when one serves it.
    #[wasm_bindgen(unchecked_return_type = "Observable<FerryRecord[]>")]
    pub fn query(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] collection: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "QueryOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let collection = collection_arg(&collection)?;
        self.known(&collection)?;
        let query = parse_query(&collection, &options)?;
        let subject = Rc::new(Subject::default());
        let live = self.client.query(LiveQuerySpec {
            query,
            subject: subject.clone(),
        });
        Ok(Observable::create(subject, Some(live)))
    }

    /// The sync status, as an observable.
    #[wasm_bindgen(getter, js_name = syncState, unchecked_return_type = "Observable<SyncState>")]
    pub fn sync_state(&self) -> JsValue {
        Observable::create(self.client.sync_state.clone(), None)
    }

    /// The conflict inbox, as an observable.
    #[wasm_bindgen(getter, unchecked_return_type = "Observable<Conflict[]>")]
    pub fn conflicts(&self) -> JsValue {
        Observable::create(self.client.conflicts.clone(), None)
    }

    /// The dead letters, as an observable.
    #[wasm_bindgen(getter, js_name = deadLetters, unchecked_return_type = "Observable<DeadLetter[]>")]
    pub fn dead_letters(&self) -> JsValue {
        Observable::create(self.client.dead_letters.clone(), None)
    }

    /// What the app should hear about (merges, conflicts, dead letters, a server that lost
    /// history, a database lost under the tab): the newest 100 outcomes, oldest first, each
    /// with a rising `seq`.
    #[wasm_bindgen(getter, unchecked_return_type = "Observable<Outcome[]>")]
    pub fn outcomes(&self) -> JsValue {
        Observable::create(self.client.outcomes.clone(), None)
    }

    /// Sync health figures.
    #[wasm_bindgen(unchecked_return_type = "FerryMetrics")]
    pub fn metrics(&self) -> JsValue {
        let m = self.client.engine.metrics();
        to_js(&json!({
            "syncSuccessRate": m.sync_success_rate,
            "conflictRateByCollection": m.conflict_rate_by_collection,
            "medianConvergeMs": m.median_converge_ms,
            "retryDistribution": m.retry_distribution,
            "cyclesOk": m.cycles_ok,
            "cyclesFailed": m.cycles_failed,
            "outboxDepth": self.client.engine.replica().outbox_depth(),
            "loadedEarly": self.client.store.loaded_early(),
        }))
    }

    /// The replica as support sees it: outbox entries, conflicts, dead letters, the cursor.
    #[wasm_bindgen(js_name = inspectEngine)]
    pub fn inspect_engine(&self) -> JsValue {
        to_js(&super::inspect::dump(&self.client))
    }

    /// Syncs as soon as possible (the leader tab does the work).
    #[wasm_bindgen(js_name = syncNow)]
    pub fn sync_now(&self) {
        self.client.sync_now();
    }

    /// Whether this tab runs the network loop.
    #[wasm_bindgen(getter, js_name = isLeader)]
    pub fn is_leader(&self) -> bool {
        self.client.is_leader()
    }

    /// Finishes pending writes, gives up leadership and closes the database.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let client = self.client.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            client.close().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    fn known(&self, collection: &str) -> Result<(), JsValue> {
        if self
            .client
            .options
            .collections
            .iter()
            .any(|(c, _)| c == collection)
        {
            return Ok(());
        }
        Err(crate::interop::core_error(&CoreError::new(
            ErrorCode::UnknownCollection,
            format!("collection `{collection}` is not configured"),
        )))
    }
}

impl Ferry {
    /// How many times the live queries of `collection` were computed (Rust only, for tests
    /// and profiling: a sync cycle recomputes only the collections it changed).
    pub fn query_computations(&self, collection: &str) -> u64 {
        self.client.query_computations(collection)
    }
}

/// `orderBy`: a field name or `[field, 'asc' | 'desc']`.
/// The query options of `query(collection, options)`: `{where, orderBy, limit, after}`.
pub(super) fn parse_query(collection: &str, options: &JsValue) -> Result<QuerySpec, JsValue> {
    let get = |k: &str| Reflect::get(options, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let has_options = options.is_object();
    let given = |k: &str| has_options && !get(k).is_undefined() && !get(k).is_null();
    let invalid = |e: ferry_core::query::QueryError| js_error("invalid_query", &e.0);
    let mut query = QuerySpec::all(collection);
    if given("where") {
        let filter = js(fields_from_js(&get("where"), "query.where"))?;
        query = query.with_where(&filter).map_err(invalid)?;
    }
    if has_options {
        query.order = parse_order(&get("orderBy"))?.map(|(field, desc)| Order { field, desc });
        query.limit = get("limit").as_f64().map(|l| l.max(0.0) as usize);
    }
    if given("after") {
        let row = js(fields_from_js(&get("after"), "query.after"))?;
        query = query.with_after(&Value::Object(row)).map_err(invalid)?;
    }
    Ok(query)
}

fn parse_order(value: &JsValue) -> Result<Option<(String, bool)>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    if let Some(field) = value.as_string() {
        return Ok(Some((field, false)));
    }
    if js_sys::Array::is_array(value) {
        let array: &js_sys::Array = value.unchecked_ref();
        if let Some(field) = array.get(0).as_string() {
            return match array.get(1).as_string().as_deref() {
                None | Some("asc") => Ok(Some((field, false))),
                Some("desc") => Ok(Some((field, true))),
                Some(_) => Err(js_error(
                    "invalid_argument",
                    "orderBy direction must be 'asc' or 'desc'",
                )),
            };
        }
    }
    Err(js_error(
        "invalid_argument",
        "orderBy must be a field name or [field, 'asc' | 'desc']",
    ))
}
