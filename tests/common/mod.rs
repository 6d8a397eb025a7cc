//! Helpers shared by the browser tests: unique database names, the test collections, a
//! transport with no network, and rows written in the schema-1 layout.
#![allow(dead_code)]

use ferry::platform::random_hex;
use ferry_core::policy::Policy;
use ferry_core::ports::{RequestMeta, Transport, TransportError};
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};

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
    let record_row = codec.record_row(&record).await.unwrap();
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
