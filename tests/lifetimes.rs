//! Lifetimes (trust issue, item 8): a live query costs nothing per write once nobody is
//! subscribed to it, and still answers correctly when read or subscribed again.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{done, js, json, open, snapshot, unique_name};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn call(object: &JsValue, method: &str, arg: Option<&JsValue>) -> JsValue {
    let f: js_sys::Function = js_sys::Reflect::get(object, &method.into()).unwrap().into();
    match arg {
        Some(a) => f.call1(object, a).unwrap(),
        None => f.call0(object).unwrap(),
    }
}

#[wasm_bindgen_test]
async fn queries_nobody_watches_are_not_recomputed_on_writes() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("dropped-queries"), &server).await;
    for _ in 0..1_000 {
        // Created and dropped without a subscriber (what a re-rendering component does).
        let _ = ferry.query(js(json!("notes")), None).unwrap();
    }
    let watched = ferry.query(js(json!("notes")), None).unwrap();
    let seen: Rc<RefCell<Vec<serde_json::Value>>> = Rc::default();
    let log = seen.clone();
    let on_next =
        Closure::<dyn Fn(JsValue)>::new(move |v: JsValue| log.borrow_mut().push(json(&v)))
            .into_js_value();
    call(&watched, "subscribe", Some(&on_next));

    let before = ferry.query_computations("notes");
    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "n1", "title": "a"})))
            .unwrap(),
    )
    .await;
    let spent = ferry.query_computations("notes") - before;
    assert!(
        spent <= 2,
        "only the subscribed query is recomputed, not the 1,000 dropped ones (spent {spent})"
    );
    assert_eq!(
        seen.borrow().last(),
        Some(&json!([{"id": "n1", "title": "a"}]))
    );
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn a_query_read_or_subscribed_again_after_its_last_unsubscribe_is_current() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("resubscribe"), &server).await;
    let rows = ferry.query(js(json!("notes")), None).unwrap();
    let seen: Rc<RefCell<Vec<serde_json::Value>>> = Rc::default();
    let log = seen.clone();
    let on_next =
        Closure::<dyn Fn(JsValue)>::new(move |v: JsValue| log.borrow_mut().push(json(&v)))
            .into_js_value();
    let unsubscribe = call(&rows, "subscribe", Some(&on_next));
    call(&unsubscribe, "unsubscribe", None);

    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "n1", "title": "a"})))
            .unwrap(),
    )
    .await;
    assert_eq!(seen.borrow().len(), 1, "no longer told after unsubscribing");
    assert_eq!(snapshot(&rows), json!([{"id": "n1", "title": "a"}]));

    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "n2", "title": "b"})))
            .unwrap(),
    )
    .await;
    call(&rows, "subscribe", Some(&on_next));
    assert_eq!(
        seen.borrow().last(),
        Some(&json!([{"id": "n1", "title": "a"}, {"id": "n2", "title": "b"}]))
    );
    done(ferry.close()).await;
}
