//! The JS API in a real browser: writes visible before they are durable, reads and live
//! queries, the observable contract, coded errors for bad arguments, and a first sync.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{code, done, js, json, open, snapshot, unique_name, until};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_write_is_visible_to_subscribers_before_its_promise_resolves() {
    let server = FakeServer::default();
    let name = unique_name("visible");
    let ferry = open(&name, &server).await;
    let rows = ferry.query(js(json!("notes")), None).unwrap();
    let seen: Rc<RefCell<Vec<serde_json::Value>>> = Rc::default();
    let log = seen.clone();
    let on_next =
        Closure::<dyn Fn(JsValue)>::new(move |v: JsValue| log.borrow_mut().push(json(&v)))
            .into_js_value();
    let subscribe: js_sys::Function = js_sys::Reflect::get(&rows, &"subscribe".into())
        .unwrap()
        .into();
    subscribe.call1(&rows, &on_next).unwrap();
    assert_eq!(seen.borrow().as_slice(), &[json!([])]);

    let promise = ferry
        .put(js(json!("notes")), js(json!({"id": "n1", "title": "hi"})))
        .unwrap();
    // Before the promise settles: the subscriber, the snapshot and get() all see the write.
    assert_eq!(
        seen.borrow().last(),
        Some(&json!([{"id": "n1", "title": "hi"}]))
    );
    assert_eq!(
        json(&ferry.get(js(json!("notes")), js(json!("n1"))).unwrap()),
        json!({"id": "n1", "title": "hi"})
    );
    done(promise).await;
    done(ferry.close()).await;

    let reopened = open(&name, &server).await;
    assert_eq!(
        json(&reopened.get(js(json!("notes")), js(json!("n1"))).unwrap()),
        json!({"id": "n1", "title": "hi"})
    );
    done(reopened.close()).await;
}

#[wasm_bindgen_test]
async fn queries_filter_order_and_keep_their_snapshot_until_it_changes() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("query"), &server).await;
    for (id, done_, rank) in [("a", false, 3), ("b", true, 1), ("c", false, 2)] {
        let _ = ferry
            .put(
                js(json!("tasks")),
                js(json!({"id": id, "done": done_, "rank": rank})),
            )
            .unwrap();
    }
    let open_tasks = ferry
        .query(
            js(json!("tasks")),
            Some(js(
                json!({"where": {"done": false}, "orderBy": ["rank", "desc"], "limit": 5}),
            )),
        )
        .unwrap();
    assert_eq!(
        snapshot(&open_tasks),
        json!([{"id": "a", "done": false, "rank": 3}, {"id": "c", "done": false, "rank": 2}])
    );
    let get: js_sys::Function = js_sys::Reflect::get(&open_tasks, &"getSnapshot".into())
        .unwrap()
        .into();
    let first = get.call0(&open_tasks).unwrap();
    // A write to another collection changes nothing here: same reference.
    let _ = ferry
        .put(js(json!("notes")), js(json!({"id": "x"})))
        .unwrap();
    assert!(js_sys::Object::is(&first, &get.call0(&open_tasks).unwrap()));
    done(
        ferry
            .patch(
                js(json!("tasks")),
                js(json!("c")),
                js(json!({"done": true})),
            )
            .unwrap(),
    )
    .await;
    assert!(!js_sys::Object::is(
        &first,
        &get.call0(&open_tasks).unwrap()
    ));
    assert_eq!(
        snapshot(&open_tasks),
        json!([{"id": "a", "done": false, "rank": 3}])
    );
    // RxJS interop: the observable hands out itself.
    let interop: js_sys::Function = js_sys::Reflect::get(&open_tasks, &"@@observable".into())
        .unwrap()
        .into();
    assert!(js_sys::Object::is(
        &interop.call0(&open_tasks).unwrap(),
        &open_tasks
    ));
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn bad_arguments_throw_coded_errors_and_harm_nothing() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("errors"), &server).await;
    done(
        ferry
            .put(
                js(json!("notes")),
                js(json!({"id": "keep", "title": "safe"})),
            )
            .unwrap(),
    )
    .await;
    let function = js_sys::Function::new_no_args("return 1");
    let with_function = js(json!({"id": "keep"}));
    js_sys::Reflect::set(&with_function, &"title".into(), &function).unwrap();
    let with_nan = js(json!({"id": "keep"}));
    js_sys::Reflect::set(&with_nan, &"title".into(), &JsValue::from_f64(f64::NAN)).unwrap();
    let cases: Vec<(&str, Result<js_sys::Promise, JsValue>)> = vec![
        (
            "unknown_collection",
            ferry.put(js(json!("nope")), js(json!({"id": "keep"}))),
        ),
        (
            "invalid_record",
            ferry.put(js(json!("notes")), js(json!("not an object"))),
        ),
        (
            "invalid_id",
            ferry.put(js(json!("notes")), js(json!({"title": "no id"}))),
        ),
        (
            "invalid_id",
            ferry.put(js(json!("notes")), js(json!({"id": 7}))),
        ),
        (
            "invalid_record",
            ferry.put(js(json!("notes")), with_function),
        ),
        ("invalid_record", ferry.put(js(json!("notes")), with_nan)),
        (
            "not_found",
            ferry.patch(
                js(json!("notes")),
                js(json!("missing")),
                js(json!({"a": 1})),
            ),
        ),
        (
            "not_found",
            ferry.delete(js(json!("notes")), js(json!("missing"))),
        ),
    ];
    for (expected, result) in cases {
        let error = result.expect_err(expected);
        assert!(
            wasm_bindgen::JsCast::is_instance_of::<js_sys::Error>(&error),
            "{expected}: a real Error"
        );
        assert_eq!(code(&error), expected);
    }
    assert_eq!(
        json(&ferry.get(js(json!("notes")), js(json!("keep"))).unwrap()),
        json!({"id": "keep", "title": "safe"})
    );
    let bad_open = ferry::api::ferry::Ferry::open(js(json!({"name": "x"})))
        .await
        .err()
        .expect("bad options are refused");
    assert_eq!(code(&bad_open), "invalid_options");
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn writes_reach_the_server_with_idempotency_and_trace_headers() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("push"), &server).await;
    done(
        ferry
            .put(
                js(json!("notes")),
                js(json!({"id": "n1", "title": "to the server"})),
            )
            .unwrap(),
    )
    .await;
    let state = ferry.sync_state();
    until("the server has the note", || {
        server.record("notes", "n1").is_some()
    })
    .await;
    until("the outbox is empty", || {
        snapshot(&state)["outboxDepth"] == 0
    })
    .await;
    assert_eq!(
        server.record("notes", "n1").unwrap()["title"],
        "to the server"
    );
    let push = server
        .seen()
        .into_iter()
        .find(|s| s.method == "POST")
        .expect("a push");
    assert!(push.idempotency_key.is_some_and(|k| !k.is_empty()));
    assert!(push.traceparent.is_some_and(|t| t.starts_with("00-")));
    until("a whole cycle (push and pull) completes", || {
        snapshot(&state)["lastSyncedAt"].is_number()
    })
    .await;
    assert_eq!(snapshot(&state)["isLeader"], true);
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
fn query_rows_serialize_as_the_app_sees_records() {
    use ferry::interop::{row_value, RowRef};
    let cases = [
        json!({}),
        json!({"a": 1, "title": "t"}),
        json!({"body": "b", "done": true, "n": 3, "title": "x"}),
        json!({"zeta": null, "alpha": [1, 2]}),
        json!({"id": "inner", "x": 1}),
        json!({"i": 1, "ia": 2, "ib": {"nested": "y"}}),
    ];
    for case in cases {
        let fields = case.as_object().unwrap().clone();
        let direct = serde_json::to_string(&RowRef {
            id: "rec-1",
            fields: &fields,
        })
        .unwrap();
        let copied = serde_json::to_string(&row_value("rec-1", &fields)).unwrap();
        assert_eq!(direct, copied, "fields {case}");
    }
}
