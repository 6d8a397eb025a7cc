//! Reading everything back: one readonly transaction collects the raw rows (`commit.js`),
//! then they are decoded. Without encryption the record rows — nearly all of the data — are
//! handed to wasm as ONE JSON text and decoded in one pass; with encryption each row is
//! opened on its own (outside the transaction, since decryption awaits WebCrypto).
//!
//! The read may also have happened before the module was ready: the package entry starts it
//! (`earlyOpen` in `commit.js`) while the WebAssembly module is fetched and compiled.

use super::js_store_error;
use super::outbox_rows::OutboxRows;
use super::rows::{read_meta, Codec, PlainRecordRow, META_KEY};
use super::schema::{ALL_STORES, CONFLICTS, DEAD_LETTERS, META, OUTBOX, RECORDS};
use ferry_core::ports::StoreError;
use ferry_core::replica::{LocalRecord, StoredState};
use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/store/commit.js")]
extern "C" {
    #[wasm_bindgen(js_name = readAll)]
    fn read_all(db: &web_sys::IdbDatabase) -> js_sys::Promise;
    #[wasm_bindgen(js_name = readPart)]
    fn read_part_rows(db: &web_sys::IdbDatabase, keys: &Array) -> js_sys::Promise;
    #[wasm_bindgen(js_name = recordsAsJson)]
    fn records_as_json(rows: &Array) -> Option<String>;
    #[wasm_bindgen(js_name = storeNames)]
    fn store_names() -> JsValue;
}

fn field(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

fn rows(raw: &JsValue, name: &str) -> Array {
    field(raw, name).dyn_into::<Array>().unwrap_or_default()
}

/// Every raw row stored in `db`, read in one transaction (decode with [`decode`]).
pub async fn read(db: &web_sys::IdbDatabase) -> Result<JsValue, StoreError> {
    JsFuture::from(read_all(db))
        .await
        .map_err(|e| js_store_error("load", &e))
}

/// [`read`], with only the record rows of `keys` (`[collection, id]` arrays) that exist.
pub async fn read_part(db: &web_sys::IdbDatabase, keys: &Array) -> Result<JsValue, StoreError> {
    JsFuture::from(read_part_rows(db, keys))
        .await
        .map_err(|e| js_store_error("load", &e))
}

/// The identity of the database the raw rows were read from (`None`: it has none).
pub fn identity(raw: &JsValue) -> Option<String> {
    field(raw, "identity").as_string()
}

/// Decodes what `readAll` read (here, or early: see [`super::IdbStore::adopt_early_read`]).
pub async fn decode(raw: &JsValue, codec: &Codec) -> Result<(StoredState, OutboxRows), StoreError> {
    let meta = field(raw, "meta");
    let mut state = StoredState {
        meta: (!meta.is_undefined())
            .then(|| read_meta(&meta))
            .transpose()?,
        ..StoredState::default()
    };
    state.records = read_records(codec, &rows(raw, "records")).await?;
    let (outbox_rows, outbox) = OutboxRows::load(codec, &rows(raw, "outbox")).await?;
    state.outbox = outbox;
    for row in rows(raw, "conflicts").iter() {
        state
            .conflicts
            .push(codec.read_keyed("k", "conflict", &row).await?);
    }
    for row in rows(raw, "deadLetters").iter() {
        state
            .dead_letters
            .push(codec.read_keyed("k", "dead-letter", &row).await?);
    }
    Ok((state, outbox_rows))
}

/// Whether the names the JS bulk read uses are the schema's (the JS side cannot take them
/// from Rust, since it also runs before the module is ready).
pub fn js_store_names_match() -> bool {
    let names = store_names();
    let all: Vec<String> = field(&names, "all")
        .dyn_into::<Array>()
        .map(|a| a.iter().filter_map(|v| v.as_string()).collect())
        .unwrap_or_default();
    all == ALL_STORES
        && field(&names, "meta").as_string().as_deref() == Some(META)
        && field(&names, "records").as_string().as_deref() == Some(RECORDS)
        && field(&names, "outbox").as_string().as_deref() == Some(OUTBOX)
        && field(&names, "conflicts").as_string().as_deref() == Some(CONFLICTS)
        && field(&names, "deadLetters").as_string().as_deref() == Some(DEAD_LETTERS)
        && field(&names, "metaKey").as_string().as_deref() == Some(META_KEY)
}

async fn read_records(codec: &Codec, rows: &Array) -> Result<Vec<LocalRecord>, StoreError> {
    if !codec.is_sealed() {
        if let Some(json) = records_as_json(rows) {
            // One pass; a row that does not decode fails the whole load with its reason, like
            // the row-by-row path would.
            let decoded: Vec<PlainRecordRow> = serde_json::from_str(&json).map_err(|e| {
                StoreError::Corrupt(format!("a stored record does not decode: {e}"))
            })?;
            if decoded.len() == rows.length() as usize {
                return decoded.into_iter().map(LocalRecord::try_from).collect();
            }
            return Err(StoreError::Corrupt(
                "the stored records do not decode to one record per row".into(),
            ));
        }
    }
    let mut records = Vec::new();
    for row in rows.iter() {
        records.push(codec.read_record(&row).await?);
    }
    Ok(records)
}
