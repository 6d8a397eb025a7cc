//! Untrusted values from JS never take the module down (trust issue, item 7, the JS-facing
//! part): release builds abort on a panic, which kills the whole engine, so a hostile value
//! must end as a typed error with nothing stored and the engine still working.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{code, done, js, json, open, unique_name};
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// `{id, big: new Array(length)}`.
fn record_with_array(id: &str, length: u32) -> JsValue {
    let record = js(json!({"id": id}));
    js_sys::Reflect::set(
        &record,
        &"big".into(),
        &js_sys::Array::new_with_length(length).into(),
    )
    .unwrap();
    record
}

#[wasm_bindgen_test]
async fn a_huge_array_is_refused_with_a_typed_error_and_the_engine_goes_on() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("hostile-array"), &server).await;
    for length in [u32::MAX, 1 << 31, 300_000] {
        let error = ferry
            .put(js(json!("notes")), record_with_array("bad", length))
            .expect_err("refused");
        assert_eq!(code(&error), "invalid_record", "length {length}");
    }
    assert_eq!(
        json(&ferry.get(js(json!("notes")), js(json!("bad"))).unwrap()),
        serde_json::Value::Null,
        "nothing of a refused write is visible"
    );
    // The engine still works.
    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "ok", "title": "fine"})))
            .unwrap(),
    )
    .await;
    assert_eq!(
        json(&ferry.get(js(json!("notes")), js(json!("ok"))).unwrap())["title"],
        "fine"
    );
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
async fn hostile_query_options_do_not_panic() {
    let server = FakeServer::default();
    let ferry = open(&unique_name("hostile-query"), &server).await;
    for limit in [f64::INFINITY, f64::NAN, -1.0, 1e300] {
        let options = js(json!({}));
        js_sys::Reflect::set(&options, &"limit".into(), &JsValue::from_f64(limit)).unwrap();
        // A typed error or a query: never a trap.
        let _ = ferry.query(js(json!("notes")), Some(options));
    }
    done(
        ferry
            .put(js(json!("notes")), js(json!({"id": "ok"})))
            .unwrap(),
    )
    .await;
    done(ferry.close()).await;
}

#[wasm_bindgen_test]
fn a_huge_retry_after_is_capped_instead_of_silencing_the_client_for_good() {
    use ferry::transport::{parse_retry_after, MAX_RETRY_AFTER_MS};
    assert_eq!(parse_retry_after("5"), Some(5_000));
    assert_eq!(
        parse_retry_after("99999999999999"),
        Some(MAX_RETRY_AFTER_MS)
    );
    assert_eq!(
        parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
        Some(MAX_RETRY_AFTER_MS)
    );
    assert_eq!(parse_retry_after("not a date"), None);
}
