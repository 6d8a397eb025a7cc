//! Reading everything back: one readonly transaction collects the raw rows (`commit.js`),
//! then they are decoded. Without encryption the record rows — nearly all of the data — are
//! handed to wasm as ONE JSON text and decoded in one pass; with encryption each row is
//! opened on its own (outside the transaction, since decryption awaits WebCrypto).

use super::js_store_error;
use super::outbox_rows::OutboxRows;
use super::rows::{read_meta, Codec, PlainRecordRow, META_KEY};
use super::schema::{ALL_STORES, CONFLICTS, DEAD_LETTERS, META, OUTBOX, RECORDS};
use ferry_core::ports::StoreError;
use ferry_core::replica::{LocalRecord, StoredState};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/store/commit.js")]
extern "C" {
    #[wasm_bindgen(js_name = readAll)]
    fn read_all(db: &web_sys::IdbDatabase, stores: &Object, meta_key: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = recordsAsJson)]
    fn records_as_json(rows: &Array) -> Option<String>;
}

fn field(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

fn rows(raw: &JsValue, name: &str) -> Array {
    field(raw, name).dyn_into::<Array>().unwrap_or_default()
}

/// Everything stored in `db`, decoded, and where the outbox entries are stored.
pub async fn load(
    db: &web_sys::IdbDatabase,
    codec: &Codec,
) -> Result<(StoredState, OutboxRows), StoreError> {
    let stores = Object::new();
    let all = Array::new();
    for name in ALL_STORES {
        all.push(&name.into());
    }
    for (field, name) in [
        ("all", JsValue::from(all)),
        ("meta", META.into()),
        ("records", RECORDS.into()),
        ("outbox", OUTBOX.into()),
        ("conflicts", CONFLICTS.into()),
        ("deadLetters", DEAD_LETTERS.into()),
    ] {
        let _ = Reflect::set(&stores, &field.into(), &name);
    }
    let raw = JsFuture::from(read_all(db, &stores, META_KEY))
        .await
        .map_err(|e| js_store_error("load", &e))?;
    let meta = field(&raw, "meta");
    let mut state = StoredState {
        meta: (!meta.is_undefined())
            .then(|| read_meta(&meta))
            .transpose()?,
        ..StoredState::default()
    };
    state.records = read_records(codec, &rows(&raw, "records")).await?;
    let (outbox_rows, outbox) = OutboxRows::load(codec, &rows(&raw, "outbox")).await?;
    state.outbox = outbox;
    for row in rows(&raw, "conflicts").iter() {
        state
            .conflicts
            .push(codec.read_keyed("k", "conflict", &row).await?);
    }
    for row in rows(&raw, "deadLetters").iter() {
        state
            .dead_letters
            .push(codec.read_keyed("k", "dead-letter", &row).await?);
    }
    Ok((state, outbox_rows))
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
    let mut records = Vec::with_capacity(rows.length() as usize);
    for row in rows.iter() {
        records.push(codec.read_record(&row).await?);
    }
    Ok(records)
}
