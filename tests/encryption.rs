//! Encryption at rest: nothing the app wrote is readable in raw IndexedDB, and a changed
//! ciphertext is refused as corrupt.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{code, done, js, options, unique_name};
use ferry::api::ferry::Ferry;
use ferry::store::schema::{self, OUTBOX, RECORDS};
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use serde_json::json;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CANARY: &str = "canary-7f3a-plaintext";

fn key() -> JsValue {
    js_sys::Uint8Array::from(&[7u8; 32][..]).into()
}

async fn open_encrypted(name: &str, server: &FakeServer) -> Result<Ferry, JsValue> {
    let opts = options(name, server, json!({}));
    js_sys::Reflect::set(&opts, &"encryptionKey".into(), &key()).unwrap();
    Ferry::open(opts).await
}

/// Every byte of every row of `store`, as text (strings as they are, byte arrays raw).
async fn raw_text(name: &str, store: &str) -> (Vec<JsValue>, String) {
    let db = schema::open(name, schema::VERSION, 5_000).await.unwrap();
    let tx = db.transaction(store).build().unwrap();
    let rows: Vec<JsValue> = tx
        .object_store(store)
        .unwrap()
        .get_all::<JsValue>()
        .primitive()
        .unwrap()
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(tx);
    db.close();
    let mut text = String::new();
    for row in &rows {
        for k in ["b", "s", "v"] {
            let v = js_sys::Reflect::get(row, &k.into()).unwrap();
            if let Some(s) = v.as_string() {
                text.push_str(&s);
            } else if let Some(bytes) = v.dyn_ref::<js_sys::Uint8Array>() {
                text.push_str(&String::from_utf8_lossy(&bytes.to_vec()));
            }
        }
    }
    (rows, text)
}

#[wasm_bindgen_test]
async fn stored_records_and_outbox_hold_no_plaintext_and_tampering_is_caught() {
    let server = FakeServer::default();
    server.set_offline(true);
    let name = unique_name("crypto");
    let ferry = open_encrypted(&name, &server).await.unwrap();
    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "n1", "body": CANARY})))
            .unwrap(),
    )
    .await;
    done(ferry.close()).await;

    let (records, records_text) = raw_text(&name, RECORDS).await;
    let (outbox, outbox_text) = raw_text(&name, OUTBOX).await;
    assert_eq!((records.len(), outbox.len()), (1, 1));
    assert!(!records_text.contains(CANARY) && !outbox_text.contains(CANARY));
    assert!(!records_text.contains("body"));

    // The right key reads it back.
    let again = open_encrypted(&name, &server).await.unwrap();
    assert_eq!(
        common::json(&again.get(js(json!("notes")), js(json!("n1"))).unwrap())["body"],
        CANARY
    );
    done(again.close()).await;

    // Flip one ciphertext byte: opening fails as corrupt, not with garbage.
    let row = records[0].clone();
    let sealed: js_sys::Uint8Array = js_sys::Reflect::get(&row, &"s".into())
        .unwrap()
        .unchecked_into();
    let mut bytes = sealed.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    js_sys::Reflect::set(&row, &"s".into(), &js_sys::Uint8Array::from(&bytes[..])).unwrap();
    let db = schema::open(&name, schema::VERSION, 5_000).await.unwrap();
    let tx = db
        .transaction(RECORDS)
        .with_mode(TransactionMode::Readwrite)
        .build()
        .unwrap();
    tx.object_store(RECORDS)
        .unwrap()
        .put(row)
        .primitive()
        .unwrap()
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close();
    let error = open_encrypted(&name, &server)
        .await
        .err()
        .expect("tampered data is refused");
    assert_eq!(code(&error), "corrupt_data");
}

#[wasm_bindgen_test]
async fn an_encrypted_database_does_not_open_without_its_key() {
    let server = FakeServer::default();
    server.set_offline(true);
    let name = unique_name("nokey");
    let ferry = open_encrypted(&name, &server).await.unwrap();
    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "n1", "body": CANARY})))
            .unwrap(),
    )
    .await;
    done(ferry.close()).await;
    let error = Ferry::open(options(&name, &server, json!({})))
        .await
        .err()
        .expect("no key, no data");
    assert_eq!(code(&error), "corrupt_data");
}
