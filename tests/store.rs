//! The IndexedDB store in a real browser: atomic commits, reopening, group commit, the
//! multi-tab commit contract and the upgrade from schema version 1.
#![cfg(target_arch = "wasm32")]

mod common;

use common::unique_name;
use ferry::store::{schema, IdbStore};
use ferry_core::ports::Store;
use ferry_core::replica::Change;
use indexed_db_futures::prelude::*;
use serde_json::json;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

use common::offline_engine as engine;

fn fields(v: serde_json::Value) -> ferry_core::Fields {
    v.as_object().cloned().unwrap()
}

#[wasm_bindgen_test]
async fn a_write_stores_the_record_and_its_outbox_entry_together() {
    let store = IdbStore::open(&unique_name("atomic"), None).await.unwrap();
    let e = engine(store.clone()).await;
    let (entry, ticket) = e
        .write(
            "notes",
            "n1",
            Change::Put(fields(json!({"title": "hello"}))),
        )
        .unwrap();
    e.flush(ticket).await.unwrap();
    let stored = store.load().await.unwrap();
    assert_eq!(stored.records.len(), 1);
    assert_eq!(stored.records[0].state.fields["title"], "hello");
    assert_eq!(stored.outbox.len(), 1);
    assert_eq!(Some(stored.outbox[0].entry_id.clone()), entry);
}

#[wasm_bindgen_test]
async fn data_survives_close_and_reopen() {
    let name = unique_name("reopen");
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    let (_, ticket) = e
        .write("notes", "n1", Change::Put(fields(json!({"title": "kept"}))))
        .unwrap();
    e.flush(ticket).await.unwrap();
    let client_id = e.replica().client_id().to_owned();
    drop(e);
    store.close();

    let reopened = engine(IdbStore::open(&name, None).await.unwrap()).await;
    let r = reopened.replica();
    assert_eq!(r.client_id(), client_id);
    assert_eq!(
        r.record("notes", "n1").unwrap().state.fields["title"],
        "kept"
    );
    assert_eq!(r.outbox_depth(), 1);
}

#[wasm_bindgen_test]
async fn writes_of_one_tick_share_one_transaction() {
    let store = IdbStore::open(&unique_name("group"), None).await.unwrap();
    let e = engine(store.clone()).await;
    let before = store.commit_count();
    let mut ticket = None;
    for i in 0..50 {
        let (_, t) = e
            .write(
                "notes",
                &format!("n{i}"),
                Change::Put(fields(json!({"i": i}))),
            )
            .unwrap();
        ticket = Some(t);
    }
    e.flush(ticket.unwrap()).await.unwrap();
    assert_eq!(store.commit_count() - before, 1);
    assert_eq!(store.load().await.unwrap().records.len(), 50);
}

#[wasm_bindgen_test]
async fn meta_never_takes_the_data_version_back() {
    let store = IdbStore::open(&unique_name("data-version"), None)
        .await
        .unwrap();
    let e = engine(store.clone()).await;
    ferry_core::ports::Store::set_role(&store, ferry_core::role::Role::Follower);
    // A tab that migrated the data to version 3 commits its meta…
    let mut newer = e.replica().meta().clone();
    newer.data_version = 3;
    let batch = |meta: &ferry_core::replica::Meta| ferry_core::replica::WriteBatch {
        meta: Some(meta.clone()),
        ..Default::default()
    };
    store.commit(&batch(&newer)).await.unwrap();
    assert_eq!(store.load().await.unwrap().meta.unwrap().data_version, 3);
    // …then a tab opened before the migration commits its own, still at version 1 (a write
    // moved its seq on): the stored data version stays 3, the rest of the row is the tab's.
    let mut older = newer.clone();
    older.data_version = 1;
    older.next_seq = newer.next_seq + 5;
    store.commit(&batch(&older)).await.unwrap();
    let stored = store.load().await.unwrap().meta.unwrap();
    assert_eq!(stored.data_version, 3, "the data version went back");
    assert_eq!(stored.next_seq, newer.next_seq + 5);
}

#[wasm_bindgen_test]
async fn meta_keeps_the_larger_seq_and_records_never_lose_a_newer_base() {
    let store = IdbStore::open(&unique_name("contract"), None)
        .await
        .unwrap();
    let e = engine(store.clone()).await;
    // The engine opened as the leader; the contract below is what every other writer of
    // the database (a follower tab) relies on.
    ferry_core::ports::Store::set_role(&store, ferry_core::role::Role::Follower);
    let mut meta = e.replica().meta().clone();
    meta.next_seq = 40;
    let mut batch = ferry_core::replica::WriteBatch {
        meta: Some(meta.clone()),
        ..Default::default()
    };
    store.commit(&batch).await.unwrap();
    meta.next_seq = 3;
    batch.meta = Some(meta);
    store.commit(&batch).await.unwrap();
    assert_eq!(store.load().await.unwrap().meta.unwrap().next_seq, 40);

    let record = |version: u64, title: &str| ferry_core::replica::LocalRecord {
        collection: "notes".into(),
        id: "r".into(),
        base: Some(ferry_core::Record {
            collection: "notes".into(),
            id: "r".into(),
            version,
            fields: fields(json!({"title": title})),
            deleted: false,
            hlc: ferry_core::Hlc {
                wall_ms: 1,
                counter: 0,
                node: "c1".into(),
            },
        }),
        state: ferry_core::policy::State::live(fields(json!({"title": title}))),
        hlc: ferry_core::Hlc {
            wall_ms: 1,
            counter: 0,
            node: "c1".into(),
        },
    };
    let put = |r| {
        let mut b = ferry_core::replica::WriteBatch::default();
        b.records.insert(("notes".into(), "r".into()), Some(r));
        b
    };
    store.commit(&put(record(5, "new"))).await.unwrap();
    store.commit(&put(record(2, "stale"))).await.unwrap();
    let stored = store.load().await.unwrap();
    assert_eq!(stored.records[0].version(), 5);
    assert_eq!(stored.records[0].state.fields["title"], "stale");
}

#[wasm_bindgen_test]
async fn a_version_1_database_upgrades_with_its_data() {
    let name = unique_name("upgrade");
    // Write with today's code into a database created at schema version 1...
    let v1 = schema::open(&name, 1, 5_000).await.unwrap();
    assert_eq!(v1.object_store_names().count(), 3);
    common::write_v1_rows(&v1).await;
    v1.close();
    // ...and open it at the current version.
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    assert_eq!(
        e.replica().record("notes", "old").unwrap().state.fields["title"],
        "from v1"
    );
    assert_eq!(e.replica().outbox_depth(), 1);
    let (_, t) = e
        .write("notes", "new", Change::Put(fields(json!({"title": "v2"}))))
        .unwrap();
    e.flush(t).await.unwrap();
    assert_eq!(store.load().await.unwrap().records.len(), 2);
}

#[wasm_bindgen_test]
async fn a_version_2_database_upgrades_to_4_dropping_the_unused_index_adding_by_key_and_keeping_rows(
) {
    use indexed_db_futures::internals::SystemRepr;
    let name = unique_name("upgrade-v2");
    let v2 = schema::open(&name, 2, 5_000).await.unwrap();
    common::write_v1_rows(&v2).await;
    let index_count = |db: &indexed_db_futures::database::Database| {
        let tx = db.as_sys().transaction_with_str(schema::RECORDS).unwrap();
        tx.object_store(schema::RECORDS)
            .unwrap()
            .index_names()
            .length()
    };
    assert_eq!(index_count(&v2), 1, "version 2 has by_collection");
    v2.close();
    let store = IdbStore::open(&name, None).await.unwrap();
    let stored = store.load().await.unwrap();
    assert_eq!(stored.records.len(), 1);
    assert_eq!(stored.outbox.len(), 1);
    store.close();
    let v4 = schema::open(&name, schema::VERSION, 5_000).await.unwrap();
    assert_eq!(schema::VERSION, 4);
    let names = {
        let tx = v4.as_sys().transaction_with_str(schema::RECORDS).unwrap();
        tx.object_store(schema::RECORDS).unwrap().index_names()
    };
    assert_eq!(names.length(), 1, "by_collection dropped, by_key added");
    assert_eq!(names.get(0).as_deref(), Some(schema::BY_KEY));
    assert_eq!(index_count(&v4), 1);
    assert_eq!(v4.object_store_names().count(), 5, "no scratch store left");
    v4.close();
}

#[wasm_bindgen_test]
async fn a_record_that_is_its_base_is_stored_compact_and_reads_back_whole() {
    let name = unique_name("compact");
    let store = IdbStore::open(&name, None).await.unwrap();
    let hlc = |wall_ms| ferry_core::Hlc {
        wall_ms,
        counter: 0,
        node: "c1".into(),
    };
    let base = |id: &str| ferry_core::Record {
        collection: "notes".into(),
        id: id.into(),
        version: 7,
        fields: fields(json!({"title": "synced"})),
        deleted: false,
        hlc: hlc(1),
    };
    let synced = ferry_core::replica::LocalRecord {
        collection: "notes".into(),
        id: "synced".into(),
        base: Some(base("synced")),
        state: ferry_core::policy::State::live(fields(json!({"title": "synced"}))),
        hlc: hlc(1),
    };
    let edited = ferry_core::replica::LocalRecord {
        id: "edited".into(),
        base: Some(base("edited")),
        state: ferry_core::policy::State::live(fields(json!({"title": "mine"}))),
        hlc: hlc(2),
        ..synced.clone()
    };
    let mut batch = ferry_core::replica::WriteBatch::default();
    for r in [&synced, &edited] {
        batch
            .records
            .insert((r.collection.clone(), r.id.clone()), Some(r.clone()));
    }
    ferry_core::ports::Store::set_role(&store, ferry_core::role::Role::Leader);
    store.commit(&batch).await.unwrap();

    // The raw rows: `s` only where the record differs from its base.
    let db = schema::open(&name, schema::VERSION, 5_000).await.unwrap();
    let tx = db.transaction(schema::RECORDS).build().unwrap();
    let rows: Vec<wasm_bindgen::JsValue> = tx
        .object_store(schema::RECORDS)
        .unwrap()
        .get_all::<wasm_bindgen::JsValue>()
        .primitive()
        .unwrap()
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(tx);
    db.close();
    let has_s = |id: &str| {
        let row = rows
            .iter()
            .find(|r| {
                js_sys::Reflect::get(r, &"i".into())
                    .unwrap()
                    .as_string()
                    .as_deref()
                    == Some(id)
            })
            .unwrap();
        !js_sys::Reflect::get(row, &"s".into())
            .unwrap()
            .is_undefined()
    };
    assert!(!has_s("synced"), "stored compact");
    assert!(has_s("edited"), "a local change keeps its state");

    let stored = store.load().await.unwrap();
    let find = |id: &str| stored.records.iter().find(|r| r.id == id).unwrap().clone();
    assert_eq!(find("synced"), synced);
    assert_eq!(find("edited"), edited);
}

#[wasm_bindgen_test]
fn the_js_bulk_read_names_the_schema_stores() {
    // `readAll` also runs before the module is ready (the package entry's early read), so it
    // names the stores itself; they must be the schema's.
    assert!(ferry::store::js_store_names_match());
}

#[wasm_bindgen_test]
async fn rows_of_one_commit_keep_non_ascii_text_apart() {
    // The plain rows of a commit cross into JS as one text cut at UTF-16 offsets: text whose
    // UTF-8 and UTF-16 lengths differ must not shift the cuts of the rows after it.
    let name = unique_name("utf16");
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    let (_, first) = e
        .write("notes", "gone", Change::Put(fields(json!({"title": "x"}))))
        .unwrap();
    e.flush(first).await.unwrap();
    let records = [
        (
            "accents-1",
            json!({"title": "naïve café 😀", "tag": "日本語"}),
        ),
        ("plain-2", json!({"title": "ascii", "n": 2})),
        ("emoji-3", json!({"title": "𝄞 clef", "nested": {"k": "ß"}})),
    ];
    // Ids are printable ASCII; the fields are not. All of it is one commit.
    for (id, value) in &records {
        e.write("notes", id, Change::Put(fields(value.clone())))
            .unwrap();
    }
    let (_, ticket) = e.write("notes", "gone", Change::Delete).unwrap();
    e.flush(ticket).await.unwrap();
    drop(e);
    store.close();

    let stored = IdbStore::open(&name, None)
        .await
        .unwrap()
        .load()
        .await
        .unwrap();
    for (id, value) in &records {
        let record = stored.records.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(record.state.fields, fields(value.clone()), "{id}");
    }
    let gone = stored.records.iter().find(|r| r.id == "gone");
    assert!(
        gone.is_none_or(|r| r.state.deleted),
        "the delete of the same commit holds"
    );
}
