//! Helpers shared by the browser tests: unique database names, the test collections, a
//! transport with no network, an engine on it, and rows written in the schema-1 layout.
#![allow(dead_code)]

pub mod server;

use ferry::platform::random_hex;
use ferry_core::policy::Policy;
use ferry_core::ports::{RequestMeta, Transport, TransportError};
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};

/// An engine on `store` with the test collections and no network.
pub type OfflineEngine = ferry_core::engine::Engine<
    ferry::store::IdbStore,
    NoNetwork,
    ferry_core::ports::NoAuth,
    ferry::platform::JsClock,
    ferry::platform::CryptoEntropy,
>;

pub async fn offline_engine(store: ferry::store::IdbStore) -> OfflineEngine {
    ferry_core::engine::Engine::open(
        store,
        NoNetwork,
        ferry_core::ports::NoAuth,
        ferry::platform::JsClock,
        ferry::platform::CryptoEntropy,
        ferry_core::replica::ReplicaConfig::new(collections()),
    )
    .await
    .expect("engine opens")
}

pub fn unique_name(prefix: &str) -> String {
    format!("ferry-test-{prefix}-{}", random_hex(6))
}

pub fn collections() -> Vec<(String, Policy)> {
    vec![
        ("notes".to_owned(), Policy::MergeFields),
        ("tasks".to_owned(), Policy::LastWriterWins),
        ("expenses".to_owned(), Policy::ServerWinsReview),
    ]
}

/// A transport for tests that never sync.
pub struct NoNetwork;

impl Transport for NoNetwork {
    async fn push(&self, _: &PushRequest, _: &RequestMeta) -> Result<PushResponse, TransportError> {
        Err(TransportError::Network("no network in this test".into()))
    }
    async fn pull(&self, _: u64, _: u32, _: &RequestMeta) -> Result<PullResponse, TransportError> {
        Err(TransportError::Network("no network in this test".into()))
    }
}

/// Writes one record and one outbox entry as a schema-1 database holds them.
pub async fn write_v1_rows(db: &indexed_db_futures::database::Database) {
    use ferry::store::rows::Codec;
    use ferry::store::schema::{OUTBOX, RECORDS};
    use indexed_db_futures::prelude::*;
    use indexed_db_futures::transaction::TransactionMode;
    let codec = Codec::default();
    let fields = serde_json::json!({"title": "from v1"})
        .as_object()
        .cloned()
        .unwrap();
    let record = ferry_core::replica::LocalRecord {
        collection: "notes".into(),
        id: "old".into(),
        base: None,
        state: ferry_core::policy::State::live(fields.clone()),
        hlc: ferry_core::Hlc {
            wall_ms: 1,
            counter: 0,
            node: "c1".into(),
        },
    };
    let entry = ferry_core::outbox::OutboxEntry {
        entry_id: "0001-old".into(),
        collection: "notes".into(),
        record_id: "old".into(),
        op: ferry_core::OpKind::Create,
        patch: fields,
        hlc: ferry_core::Hlc {
            wall_ms: 1,
            counter: 0,
            node: "c1".into(),
        },
        sent: None,
        attempts: 0,
        created_at_ms: 1,
        last_error: None,
        writes: 1,
    };
    let record_row = codec.record_row(&record, false).await.unwrap();
    let entry_row = codec
        .keyed_row("e", "outbox", &entry.entry_id, &entry)
        .await
        .unwrap();
    let tx = db
        .transaction([RECORDS, OUTBOX])
        .with_mode(TransactionMode::Readwrite)
        .build()
        .unwrap();
    tx.object_store(RECORDS)
        .unwrap()
        .put(record_row)
        .primitive()
        .unwrap()
        .await
        .unwrap();
    tx.object_store(OUTBOX)
        .unwrap()
        .put(entry_row)
        .primitive()
        .unwrap()
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Options for `Ferry.open` against `server` (`extra` is merged in).
pub fn options(
    name: &str,
    server: &server::FakeServer,
    extra: serde_json::Value,
) -> wasm_bindgen::JsValue {
    let mut base = serde_json::json!({
        "name": name,
        "url": "https://sync.test/v1",
        "live": false,
        "collections": {
            "notes": {"policy": "merge-fields"},
            "tasks": {"policy": "last-writer-wins"},
            "expenses": {"policy": "server-wins-review"}
        }
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let options = js_sys::JSON::parse(&base.to_string()).unwrap();
    js_sys::Reflect::set(&options, &"fetch".into(), &server.fetch()).unwrap();
    options
}

pub async fn open(name: &str, server: &server::FakeServer) -> ferry::api::ferry::Ferry {
    ferry::api::ferry::Ferry::open(options(name, server, serde_json::json!({})))
        .await
        .expect("Ferry.open")
}

/// Awaits a promise, expecting it to resolve.
pub async fn done(promise: js_sys::Promise) -> wasm_bindgen::JsValue {
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect("the promise resolves")
}

/// A JS value as JSON.
pub fn json(value: &wasm_bindgen::JsValue) -> serde_json::Value {
    if value.is_undefined() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&String::from(js_sys::JSON::stringify(value).unwrap())).unwrap()
}

/// The current value of an observable, as JSON.
pub fn snapshot(observable: &wasm_bindgen::JsValue) -> serde_json::Value {
    let get: js_sys::Function = js_sys::Reflect::get(observable, &"getSnapshot".into())
        .unwrap()
        .into();
    json(&get.call0(observable).unwrap())
}

/// Waits (yielding to the browser) until `condition` holds; fails after about 20 s.
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if condition() {
            return;
        }
        ferry::platform::sleep_ms(10).await;
    }
    panic!("gave up waiting until {what}");
}

/// The `code` of a thrown JS error.
pub fn code(error: &wasm_bindgen::JsValue) -> String {
    js_sys::Reflect::get(error, &"code".into())
        .ok()
        .and_then(|c| c.as_string())
        .unwrap_or_default()
}

/// A JS value from JSON.
pub fn js(value: serde_json::Value) -> wasm_bindgen::JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap()
}
