//! The outbox stored in segments (src/store/outbox_rows.rs), in a real browser: a commit of
//! many new entries writes a few rows, a changed entry is rewritten where it lives, removed
//! entries leave their rows (an emptied row is deleted), and entries stored one per row by
//! earlier versions keep working.
#![cfg(target_arch = "wasm32")]

mod common;

use common::unique_name;
use ferry::store::outbox_rows::SEGMENT_CAP;
use ferry::store::{schema, IdbStore};
use ferry_core::ports::Store;
use ferry_core::replica::Change;
use serde_json::json;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

use common::offline_engine as engine;

fn put(title: &str) -> Change {
    Change::Put(json!({ "title": title }).as_object().cloned().unwrap())
}

#[wasm_bindgen_test]
async fn many_new_entries_share_a_few_rows_and_survive_reopening() {
    let name = unique_name("segments");
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    let n = 2 * SEGMENT_CAP + 88;
    let mut ticket = None;
    for i in 0..n {
        let (_, t) = e.write("notes", &format!("n{i:04}"), put("first")).unwrap();
        ticket = Some(t);
    }
    e.flush(ticket.unwrap()).await.unwrap();
    assert_eq!(
        store.outbox_row_count(),
        3,
        "{n} entries in rows of {SEGMENT_CAP}"
    );

    // One entry changes: rewritten in the row that holds it, nothing added.
    let (_, t) = e.write("notes", "n0007", put("second")).unwrap();
    e.flush(t).await.unwrap();
    assert_eq!(store.outbox_row_count(), 3);

    // Deleting never-sent records cancels their entries; the first row empties and goes.
    let mut ticket = None;
    for i in 0..SEGMENT_CAP {
        let (_, t) = e
            .write("notes", &format!("n{i:04}"), Change::Delete)
            .unwrap();
        ticket = Some(t);
    }
    e.flush(ticket.unwrap()).await.unwrap();
    assert_eq!(store.outbox_row_count(), 2);
    drop(e);
    store.close();

    let reopened = IdbStore::open(&name, None).await.unwrap();
    let stored = reopened.load().await.unwrap();
    assert_eq!(stored.outbox.len(), n - SEGMENT_CAP);
    assert_eq!(reopened.outbox_row_count(), 2);
    let ids: std::collections::BTreeSet<&str> =
        stored.outbox.iter().map(|e| e.record_id.as_str()).collect();
    assert_eq!(ids.len(), n - SEGMENT_CAP, "each entry once");
    assert!(!ids.contains("n0007"), "cancelled with the first row");
    assert!(ids.contains(format!("n{:04}", n - 1).as_str()));
}

#[wasm_bindgen_test]
async fn a_changed_entry_is_rewritten_in_place() {
    let name = unique_name("segments-in-place");
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    let (_, t) = e.write("notes", "a", put("one")).unwrap();
    e.write("notes", "b", put("one")).unwrap();
    e.flush(t).await.unwrap();
    let (_, t) = e.write("notes", "a", put("two")).unwrap();
    e.flush(t).await.unwrap();
    assert_eq!(store.outbox_row_count(), 1);
    store.close();
    let reopened = IdbStore::open(&name, None).await.unwrap();
    let stored = reopened.load().await.unwrap();
    let a = stored.outbox.iter().find(|e| e.record_id == "a").unwrap();
    assert_eq!(a.patch["title"], "two");
    assert_eq!(a.writes, 2, "coalesced into the stored entry");
    assert_eq!(stored.outbox.len(), 2);
}

#[wasm_bindgen_test]
async fn entries_stored_one_per_row_keep_working() {
    let name = unique_name("segments-legacy");
    let v1 = schema::open(&name, 1, 5_000).await.unwrap();
    common::write_v1_rows(&v1).await;
    v1.close();
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    assert_eq!(e.replica().outbox_depth(), 1);
    assert_eq!(store.outbox_row_count(), 1);
    // A new entry goes to a segment; the old one stays in its own row.
    let (_, t) = e.write("notes", "new", put("fresh")).unwrap();
    e.flush(t).await.unwrap();
    assert_eq!(store.outbox_row_count(), 2);
    // The old entry changes in place, then is cancelled: its row is deleted.
    let (_, t) = e.write("notes", "old", put("edited")).unwrap();
    e.flush(t).await.unwrap();
    assert_eq!(store.outbox_row_count(), 2);
    let stored = store.load().await.unwrap();
    let old = stored.outbox.iter().find(|e| e.record_id == "old").unwrap();
    assert_eq!(old.patch["title"], "edited");
    let (_, t) = e.write("notes", "old", Change::Delete).unwrap();
    e.flush(t).await.unwrap();
    assert_eq!(store.outbox_row_count(), 1);
    let stored = store.load().await.unwrap();
    assert_eq!(stored.outbox.len(), 1);
    assert_eq!(stored.outbox[0].record_id, "new");
}
