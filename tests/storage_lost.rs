//! Storage wiped under a running tab (trust issue, item 2): the database is deleted while
//! the engine runs. A later write must not resolve into a fresh, partial database; the
//! engine re-creates the database from its replica (records, unsent outbox, a reset cursor),
//! so a reload sees everything that was acknowledged, and the app hears `storage-lost`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{done, js, json, open, snapshot, unique_name, until};
use ferry::store::IdbStore;
use ferry_core::ports::{Store, StoreError};
use ferry_core::replica::Change;
use serde_json::json;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

use common::offline_engine as engine;

fn fields(v: serde_json::Value) -> ferry_core::Fields {
    v.as_object().cloned().unwrap()
}

/// Deletes the database `name` as another tab would, and waits until it is gone.
async fn delete_database(name: &str) {
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let request = factory.delete_database(name).unwrap();
    let done = js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
        request.set_onblocked(Some(&reject));
    });
    wasm_bindgen_futures::JsFuture::from(done)
        .await
        .expect("the database is deleted (no connection blocks it)");
}

#[wasm_bindgen_test]
async fn a_write_after_the_database_was_deleted_recreates_it_from_the_replica() {
    let name = unique_name("wiped");
    let store = IdbStore::open(&name, None).await.unwrap();
    let e = engine(store.clone()).await;
    let mut ticket = None;
    for i in 0..20 {
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

    delete_database(&name).await;
    // The store's connection let go; the database is gone. A load now must not pass a
    // fresh, empty database off as this replica's.
    assert!(matches!(store.load().await, Err(StoreError::Lost(_))));

    let (_, t) = e
        .write("notes", "after", Change::Put(fields(json!({"i": 99}))))
        .unwrap();
    e.flush(t).await.expect("re-created, the write is durable");
    let recreations = store.take_recreations();
    assert_eq!(
        recreations.len(),
        1,
        "the app hears of it once: {recreations:?}"
    );

    // A reload (a fresh handle and engine on the same name) sees every acknowledged write,
    // the unsent outbox, and a cursor reset so the next pull is complete.
    let reopened = engine(IdbStore::open(&name, None).await.unwrap()).await;
    let r = reopened.replica();
    assert_eq!(r.all_records().count(), 21);
    assert_eq!(r.outbox_depth(), 21, "no unsent write was lost");
    assert_eq!(r.cursor(), 0);
}

#[wasm_bindgen_test]
async fn a_running_tab_recreates_a_deleted_database_without_waiting_for_a_write() {
    let server = FakeServer::default();
    let name = unique_name("wiped-api");
    let ferry = open(&name, &server).await;
    for i in 0..5 {
        done(
            ferry
                .put(
                    js(json!("notes")),
                    js(json!({"id": format!("n{i}"), "i": i})),
                )
                .unwrap(),
        )
        .await;
    }
    let state = ferry.sync_state();
    assert_eq!(snapshot(&state)["storageLost"], serde_json::Value::Null);

    delete_database(&name).await;
    // `versionchange` closed the connection; the tab checks the database on its own.
    until("the tab re-created the database", || {
        !snapshot(&state)["storageLost"].is_null()
    })
    .await;
    let outcomes = snapshot(&ferry.outcomes());
    assert!(
        outcomes
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "storage-lost"),
        "{outcomes}"
    );
    done(ferry.close()).await;

    let reopened = open(&name, &server).await;
    for i in 0..5 {
        assert_eq!(
            json(
                &reopened
                    .get(js(json!("notes")), js(json!(format!("n{i}"))))
                    .unwrap()
            )["i"],
            json!(i)
        );
    }
    done(reopened.close()).await;
}
