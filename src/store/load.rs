//! Reading everything back: one readonly transaction collects the raw rows, then (outside
//! the transaction, since decryption awaits WebCrypto) they are decoded.

use super::idb_error;
use super::rows::{read_meta, Codec, META_KEY};
use super::schema::{ALL_STORES, CONFLICTS, DEAD_LETTERS, META, OUTBOX, RECORDS};
use ferry_core::ports::StoreError;
use ferry_core::replica::StoredState;
use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use wasm_bindgen::JsValue;

struct Raw {
    meta: Option<JsValue>,
    records: Vec<JsValue>,
    outbox: Vec<JsValue>,
    conflicts: Vec<JsValue>,
    dead_letters: Vec<JsValue>,
}

async fn read_all(db: &Database) -> indexed_db_futures::Result<Raw> {
    let tx = db.transaction(ALL_STORES).build()?;
    let all = |name: &'static str| {
        let tx = &tx;
        async move {
            let store = tx.object_store(name)?;
            let rows: Vec<JsValue> = store
                .get_all::<JsValue>()
                .primitive()?
                .await?
                .collect::<Result<_, _>>()?;
            indexed_db_futures::Result::Ok(rows)
        }
    };
    let meta: Option<JsValue> = tx.object_store(META)?.get(META_KEY).primitive()?.await?;
    let raw = Raw {
        meta,
        records: all(RECORDS).await?,
        outbox: all(OUTBOX).await?,
        conflicts: all(CONFLICTS).await?,
        dead_letters: all(DEAD_LETTERS).await?,
    };
    tx.commit().await?;
    Ok(raw)
}

/// Everything stored in `db`, decoded.
pub async fn load(db: &Database, codec: &Codec) -> Result<StoredState, StoreError> {
    let raw = read_all(db).await.map_err(|e| idb_error("load", e))?;
    let mut state = StoredState {
        meta: raw.meta.as_ref().map(read_meta).transpose()?,
        ..StoredState::default()
    };
    for row in &raw.records {
        state.records.push(codec.read_record(row).await?);
    }
    for row in &raw.outbox {
        state
            .outbox
            .push(codec.read_keyed("e", "outbox", row).await?);
    }
    for row in &raw.conflicts {
        state
            .conflicts
            .push(codec.read_keyed("k", "conflict", row).await?);
    }
    for row in &raw.dead_letters {
        state
            .dead_letters
            .push(codec.read_keyed("k", "dead-letter", row).await?);
    }
    Ok(state)
}
