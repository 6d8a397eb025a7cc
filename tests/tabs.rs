//! Two Ferry instances on one database in one page behave like two tabs: one leads, the
//! other follows and sees the leader's writes; when the leader closes, the follower takes
//! over and pushes what both wrote.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{done, js, json, open, snapshot, unique_name, until};
use serde_json::json;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn the_follower_sees_changes_and_takes_over_when_the_leader_closes() {
    let server = FakeServer::default();
    server.set_offline(true);
    let name = unique_name("tabs");
    let a = open(&name, &server).await;
    until("the first tab leads", || a.is_leader()).await;
    let b = open(&name, &server).await;
    assert!(!b.is_leader());
    assert_eq!(snapshot(&b.sync_state())["isLeader"], false);

    let notes_on_b = b.query(js(json!("notes")), None).unwrap();
    done(
        a.put(js(json!("notes")), js(json!({"id": "from-a", "t": 1})))
            .unwrap(),
    )
    .await;
    until("tab b sees tab a's write", || {
        snapshot(&notes_on_b)
            .as_array()
            .is_some_and(|r| r.len() == 1)
    })
    .await;
    done(
        b.put(js(json!("notes")), js(json!({"id": "from-b", "t": 2})))
            .unwrap(),
    )
    .await;
    until("tab a sees tab b's write", || {
        json(&a.get(js(json!("notes")), js(json!("from-b"))).unwrap())["t"] == 2
    })
    .await;

    done(a.close()).await;
    until("tab b takes over", || b.is_leader()).await;
    server.set_offline(false);
    b.sync_now();
    until("both notes reach the server", || {
        server.record("notes", "from-a").is_some() && server.record("notes", "from-b").is_some()
    })
    .await;
    until("the outbox drains", || {
        snapshot(&b.sync_state())["outboxDepth"] == 0
    })
    .await;
    done(b.close()).await;
}
