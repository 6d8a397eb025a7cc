//! Sync through the JS API against the in-page fake server: resuming after the network
//! returns, refreshing the token after a 401, and dead letters that are retried or discarded.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{done, js, open, options, snapshot, unique_name, until};
use ferry::api::ferry::Ferry;
use serde_json::json;
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn offline_writes_go_out_when_the_network_returns() {
    let server = FakeServer::default();
    server.set_offline(true);
    let ferry = open(&unique_name("offline"), &server).await;
    let state = ferry.sync_state();
    done(
        ferry
            .put(
                js(json!("notes")),
                js(json!({"id": "n1", "title": "written offline"})),
            )
            .unwrap(),
    )
    .await;
    until("the engine sees it is offline", || {
        snapshot(&state)["status"] == "offline"
    })
    .await;
    assert_eq!(snapshot(&state)["outboxDepth"], 1);
    assert!(server.record("notes", "n1").is_none());

    server.set_offline(false);
    let online = web_sys::Event::new("online").unwrap();
    web_sys::window().unwrap().dispatch_event(&online).unwrap();
    until("the note reaches the server", || {
        server.record("notes", "n1").is_some()
    })
    .await;
    until("the outbox drains", || snapshot(&state)["outboxDepth"] == 0).await;
    until("the engine settles back to idle", || {
        snapshot(&state)["status"] == "idle"
    })
    .await;
    assert!(snapshot(&state)["lastError"].is_null());
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn a_401_refreshes_the_token_and_sync_resumes() {
    let server = FakeServer::default();
    server.require_token("fresh");
    let refreshes = Rc::new(Cell::new(0));
    let count = refreshes.clone();
    let get_token = Closure::<dyn Fn(bool) -> JsValue>::new(move |refresh: bool| {
        if refresh {
            count.set(count.get() + 1);
        }
        let token = if refresh { "fresh" } else { "stale" };
        JsValue::from(js_sys::Promise::resolve(&JsValue::from_str(token)))
    })
    .into_js_value();
    let opts = options(&unique_name("auth"), &server, json!({}));
    js_sys::Reflect::set(&opts, &"getToken".into(), &get_token).unwrap();
    let ferry = Ferry::open(opts).await.unwrap();
    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "n1", "title": "t"})))
            .unwrap(),
    )
    .await;
    until("the note reaches the server", || {
        server.record("notes", "n1").is_some()
    })
    .await;
    assert!(refreshes.get() >= 1);
    let seen = server.seen();
    assert!(seen
        .iter()
        .any(|s| s.status == 401 && s.authorization.as_deref() == Some("Bearer stale")));
    assert!(seen
        .iter()
        .any(|s| s.status == 200 && s.authorization.as_deref() == Some("Bearer fresh")));
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn refused_writes_become_dead_letters_that_can_be_retried_or_discarded() {
    let server = FakeServer::default();
    server.refuse(Some("expenses"));
    let ferry = open(&unique_name("dead"), &server).await;
    let letters = ferry.dead_letters();
    done(
        ferry
            .put(js(json!("expenses")), js(json!({"id": "e1", "amount": 5})))
            .unwrap(),
    )
    .await;
    done(
        ferry
            .put(js(json!("expenses")), js(json!({"id": "e2", "amount": 7})))
            .unwrap(),
    )
    .await;
    until("both are dead letters", || {
        snapshot(&letters).as_array().is_some_and(|l| l.len() == 2)
    })
    .await;
    let get: js_sys::Function = js_sys::Reflect::get(&letters, &"getSnapshot".into())
        .unwrap()
        .into();
    let list: js_sys::Array = get.call0(&letters).unwrap().into();
    let letter = |i: u32| list.get(i);
    let field = |v: &JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).unwrap();
    assert_eq!(
        field(&letter(0), "code").as_string().unwrap(),
        "validation_failed"
    );

    server.refuse(None);
    let (e1, e2) = (letter(0), letter(1));
    let (first, second) = match field(&e1, "recordId").as_string().as_deref() {
        Some("e1") => (e1, e2),
        _ => (e2, e1),
    };
    let retry: js_sys::Function = field(&first, "retry").into();
    done(
        retry
            .call1(&first, &js(json!({"id": "e1", "amount": 6})))
            .unwrap()
            .into(),
    )
    .await;
    let discard: js_sys::Function = field(&second, "discard").into();
    done(discard.call0(&second).unwrap().into()).await;
    until("the retried expense reaches the server", || {
        server.record("expenses", "e1").is_some()
    })
    .await;
    assert_eq!(server.record("expenses", "e1").unwrap()["amount"], 6);
    until("no dead letters remain", || snapshot(&letters) == json!([])).await;
    assert!(server.record("expenses", "e2").is_none());
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn a_sync_cycle_recomputes_only_the_queries_of_collections_it_changed() {
    let server = FakeServer::default();
    let a = open(&unique_name("views-a"), &server).await;
    let b = open(&unique_name("views-b"), &server).await;
    let notes = b.query(js(json!("notes")), None).unwrap();
    let _tasks = b.query(js(json!("tasks")), None).unwrap();
    // Let b take the lead and finish its first cycle (which reloads every view once).
    until("b has synced once", || {
        let s = snapshot(&b.sync_state());
        s["isLeader"] == true && s["status"] == "idle" && !s["lastSyncedAt"].is_null()
    })
    .await;
    done(
        a.put(
            js(json!("notes")),
            js(json!({"id": "n1", "title": "from a"})),
        )
        .unwrap(),
    )
    .await;
    a.sync_now();
    until("a's note reaches the server", || {
        server.record("notes", "n1").is_some()
    })
    .await;

    let (tasks_before, notes_before) =
        (b.query_computations("tasks"), b.query_computations("notes"));
    b.sync_now();
    until("b pulls the note", || {
        snapshot(&notes).as_array().is_some_and(|r| r.len() == 1)
    })
    .await;
    assert!(b.query_computations("notes") > notes_before);
    assert_eq!(
        b.query_computations("tasks"),
        tasks_before,
        "a pull of notes leaves the tasks query alone"
    );
    done(a.close()).await;
    done(b.close()).await;
}
