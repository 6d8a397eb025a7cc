//! Hostile values at the wire-facing and clock-facing entry points never panic (a release
//! build aborts on panic, taking the whole engine down): answers with arbitrary numbers and
//! flags are either refused as protocol errors or folded in safely; retry times, clock
//! readings and stored data with a missing record row are handled without overflow or
//! `expect`.

use ferry_core::answers::{check_pull, check_push};
use ferry_core::hlc::Hlc;
use ferry_core::outbox::OutboxEntry;
use ferry_core::policy::Policy;
use ferry_core::protocol::{Accepted, OpKind, PullResponse, PushResponse, Record};
use ferry_core::replica::{Change, Replica, ReplicaConfig, StoredState};
use ferry_core::state::{Failure, SyncState};
use proptest::prelude::*;
use serde_json::json;

fn replica() -> Replica {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    Replica::open(StoredState::default(), config, || "me".to_owned())
}

fn record(id: u8, version: u64, wall_ms: u64) -> Record {
    Record {
        collection: "notes".into(),
        id: format!("n{id}"),
        version,
        fields: json!({"v": version}).as_object().cloned().unwrap(),
        deleted: false,
        hlc: Hlc {
            wall_ms,
            counter: 0,
            node: "them".into(),
        },
    }
}

proptest! {
    #[test]
    fn any_pull_answer_is_refused_or_folded_in_without_panic(
        cursor in any::<u64>(),
        has_more in any::<bool>(),
        remaining in any::<u64>(),
        head in any::<u64>(),
        server_time in any::<u64>(),
        changes in proptest::collection::vec((0u8..4, 1u64..u64::MAX, any::<u64>()), 0..6),
        now in any::<u64>(),
    ) {
        let mut r = replica();
        r.write("notes", "n1", Change::Put(json!({"mine": 1}).as_object().cloned().unwrap()), now).unwrap();
        let page = PullResponse {
            changes: changes.iter().map(|(id, v, w)| record(*id, *v, *w)).collect(),
            cursor,
            has_more,
            remaining,
            head,
            epoch: "e".into(),
            server_time,
            limits: None,
            revoked: Vec::new(),
            view: String::new(),
        };
        let asked = r.cursor();
        r.calibrate(server_time, now, now);
        if r.check_history(&page.epoch, page.head).is_none()
            && check_pull(asked, 1_000, &page).is_ok()
        {
            r.on_pull_page(&page, now);
            prop_assert!(r.cursor() >= asked);
        }
        // Writing after any of it still works.
        r.write("notes", "n2", Change::Put(json!({"x": 1}).as_object().cloned().unwrap()), now).unwrap();
    }

    #[test]
    fn any_push_answer_is_refused_or_folded_in_without_panic(
        versions in proptest::collection::vec(any::<u64>(), 0..4),
        cursor in any::<u64>(),
        now in any::<u64>(),
    ) {
        let mut r = replica();
        r.write("notes", "a", Change::Put(json!({"v": 1}).as_object().cloned().unwrap()), 1).unwrap();
        let req = r.begin_push().unwrap();
        let resp = PushResponse {
            accepted: versions
                .iter()
                .map(|v| Accepted { op_id: req.mutations[0].op_id.clone(), version: *v })
                .collect(),
            cursor,
            ..PushResponse::default()
        };
        if check_push(&req, &resp).is_ok() {
            r.on_push_response(&resp, now);
        }
    }

    #[test]
    fn retry_times_never_overflow(
        now in any::<u64>(),
        retry_after in proptest::option::of(any::<u64>()),
        random in any::<u64>(),
        failures in 0u32..200,
    ) {
        let mut s = SyncState::default();
        for _ in 0..failures.min(40) {
            s.failed(Failure::Retryable { retry_after_ms: retry_after }, "x".into(), now, random);
        }
        s.failed(Failure::Protocol, "x".into(), now, random);
        s.nudge(now);
        s.network_up(now);
        prop_assert!(s.next_retry_at_ms.is_some());
    }
}

#[test]
fn an_outbox_entry_whose_record_row_is_missing_does_not_panic() {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    let entry = OutboxEntry {
        entry_id: "000000000000001-0000000000-me".into(),
        collection: "notes".into(),
        record_id: "orphan".into(),
        op: OpKind::Create,
        patch: json!({"kept": true}).as_object().cloned().unwrap(),
        hlc: Hlc {
            wall_ms: 1,
            counter: 0,
            node: "me".into(),
        },
        sent: None,
        attempts: 0,
        created_at_ms: 1,
        last_error: None,
        writes: 1,
    };
    let stored = StoredState {
        outbox: vec![entry],
        ..StoredState::default()
    };
    let mut r = Replica::open(stored, config, || "me".to_owned());
    let shown = r
        .record("notes", "orphan")
        .expect("the write stays visible");
    assert_eq!(shown.state.fields.get("kept"), Some(&json!(true)));
    // A pulled version of the record settles against it instead of panicking.
    let mut server = record(0, 5, 10);
    server.id = "orphan".into();
    r.on_pull_page(
        &PullResponse {
            changes: vec![server],
            cursor: 5,
            ..PullResponse::default()
        },
        20,
    );
    assert!(r.record("notes", "orphan").is_some());
}
