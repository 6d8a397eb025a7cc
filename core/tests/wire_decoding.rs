//! Hostile wire input decodes to a typed error, never a panic: truncated JSON, wrong types,
//! unknown ops, huge values, negative versions, and arbitrary bytes (property tests).

use ferry_core::protocol::{limits, PullResponse, PushRequest, PushResponse, WireError};
use proptest::prelude::*;
use serde_json::{json, Value};

fn valid_push() -> Value {
    json!({
        "client_id": "c1",
        "mutations": [{
            "op_id": "c1.1", "client_id": "c1", "seq": 1, "collection": "notes", "record_id": "n1",
            "op": "update", "base_version": 3, "patch": {"title": "hi", "n": 2},
            "hlc": "000001700000000-0000000000-c1"
        }]
    })
}

fn decode(v: &Value) -> Result<PushRequest, WireError> {
    PushRequest::decode(&serde_json::to_vec(v).unwrap())
}

fn with(path: &str, value: Value) -> Value {
    let mut v = valid_push();
    *v.pointer_mut(path).unwrap() = value;
    v
}

#[test]
fn the_valid_message_decodes() {
    let req = decode(&valid_push()).expect("valid");
    assert_eq!(req.mutations[0].base_version, 3);
}

#[test]
fn each_kind_of_bad_input_has_its_typed_error() {
    let malformed =
        |r: Result<PushRequest, WireError>| matches!(r, Err(WireError::Malformed { .. }));
    let invalid = |r: Result<PushRequest, WireError>| matches!(r, Err(WireError::Invalid { .. }));
    assert!(
        malformed(PushRequest::decode(
            br#"{"client_id":"c1","mutations":[{"op_id""#
        )),
        "truncated"
    );
    assert!(
        malformed(decode(&with("/mutations/0/seq", json!("one")))),
        "wrong type"
    );
    assert!(
        malformed(decode(&with("/mutations/0/op", json!("upsert")))),
        "unknown op"
    );
    assert!(
        malformed(decode(&with("/mutations/0/base_version", json!(-1)))),
        "negative version"
    );
    assert!(
        malformed(decode(&with("/mutations/0/base_version", json!(1e300)))),
        "huge float version"
    );
    assert!(
        invalid(decode(&with("/mutations/0/base_version", json!(u64::MAX)))),
        "beyond 2^53"
    );
    assert!(
        malformed(decode(&with("/mutations/0/hlc", json!("yesterday")))),
        "bad clock"
    );
    assert!(
        invalid(decode(&with("/mutations/0/seq", json!(0)))),
        "seq 0"
    );
    assert!(
        invalid(decode(&with("/mutations/0/collection", json!("Notes!")))),
        "bad collection"
    );
    assert!(
        invalid(decode(&with("/mutations/0/record_id", json!("")))),
        "empty id"
    );
    assert!(
        invalid(decode(&with(
            "/mutations/0/record_id",
            json!("x".repeat(500))
        ))),
        "long id"
    );
    assert!(
        invalid(decode(&with("/mutations/0/base_version", json!(0)))),
        "update without base"
    );
    let big = json!({"body": "x".repeat(limits::MAX_RECORD_BYTES + 1)});
    assert!(
        matches!(
            decode(&with("/mutations/0/patch", big)),
            Err(WireError::TooLarge { .. })
        ),
        "huge value"
    );
    let huge = vec![b' '; limits::MAX_PUSH_BYTES + 1];
    assert!(
        matches!(PushRequest::decode(&huge), Err(WireError::TooLarge { .. })),
        "huge body"
    );
    let mut twice = valid_push();
    let m = twice["mutations"][0].clone();
    twice["mutations"].as_array_mut().unwrap().push(m);
    assert!(invalid(decode(&twice)), "duplicate op id");
    let deep = "[".repeat(10_000);
    assert!(
        malformed(PushRequest::decode(deep.as_bytes())),
        "deep nesting"
    );
}

#[test]
fn error_codes_are_stable() {
    assert_eq!(
        PushRequest::decode(b"{").unwrap_err().code(),
        "malformed_json"
    );
    assert_eq!(
        decode(&with("/mutations/0/seq", json!(0)))
            .unwrap_err()
            .code(),
        "invalid_message"
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_string()),
                    Just("seq".to_string()),
                    Just("mutations".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = PushRequest::decode(&bytes);
        let _ = PullResponse::decode(&bytes);
        let _ = PushResponse::decode(&bytes);
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error(cut in 0usize..400) {
        let bytes = serde_json::to_vec(&valid_push()).unwrap();
        let cut = cut.min(bytes.len() - 1);
        let truncated = matches!(PushRequest::decode(&bytes[..cut]), Err(WireError::Malformed { .. }));
        prop_assert!(truncated, "a truncation at {} decoded", cut);
    }

    #[test]
    fn any_field_replaced_by_arbitrary_json_is_decoded_or_refused_cleanly(
        field in prop::sample::select(vec!["/client_id", "/mutations", "/mutations/0", "/mutations/0/op_id", "/mutations/0/seq",
            "/mutations/0/op", "/mutations/0/base_version", "/mutations/0/patch", "/mutations/0/hlc", "/mutations/0/collection"]),
        value in arb_json(),
    ) {
        match decode(&with(field, value)) {
            Ok(req) => prop_assert!(req.validate().is_ok()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn arbitrary_json_documents_never_panic(value in arb_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let _ = PushRequest::decode(&bytes);
        let _ = PullResponse::decode(&bytes);
    }
}
