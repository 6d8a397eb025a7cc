//! The apply rules' unit tests.

use super::*;
use crate::hlc::Hlc;
use crate::server::MemoryServer;
use serde_json::json;

fn mutation(seq: u64, op: OpKind, base: u64, patch: serde_json::Value) -> Mutation {
    Mutation {
        op_id: format!("op{seq}"),
        client_id: "c1".into(),
        seq,
        collection: "notes".into(),
        record_id: "n1".into(),
        op,
        base_version: base,
        patch: patch.as_object().unwrap().clone(),
        hlc: Hlc {
            wall_ms: 1_700_000_000_000 + seq,
            counter: 0,
            node: "c1".into(),
        },
    }
}

fn push(server: &mut MemoryServer, m: Mutation) -> PushResponse {
    let req = PushRequest {
        client_id: "c1".into(),
        mutations: vec![m],
    };
    server.push("t", &req, &AcceptAll).unwrap()
}

fn many_fields(prefix: &str, n: usize) -> serde_json::Value {
    (0..n)
        .map(|i| (format!("{prefix}{i}"), json!(i)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn the_pull_rule() {
    let page = PullPage::new(5, 0);
    assert_eq!(page.limit, 1, "the page size is clamped up to 1");
    assert_eq!(PullPage::new(5, u32::MAX).limit, limits::MAX_PULL_LIMIT);
    assert_eq!(page.check(5), Ok(()));
    assert_eq!(page.check(6), Err(PullError::CursorExpired { horizon: 6 }));
    assert_eq!(PullPage::new(0, 10).check(6), Ok(()), "0 is a snapshot");
    // An empty page moves the cursor up to the horizon, never back.
    let empty = PullPage::new(0, 10).answer(Vec::new(), 0, 9, 6);
    assert_eq!((empty.cursor, empty.has_more, empty.head), (6, false, 9));
    let mut m = mutation(1, OpKind::Create, 0, json!({}));
    m.seq = 1;
    let Decision::Write(mut record) = decide(&m, None, 0, None, &AcceptAll) else {
        panic!("a create of a new record is written");
    };
    record.version = 8;
    let full = PullPage::new(6, 1).answer(vec![record], 3, 9, 6);
    assert_eq!((full.cursor, full.has_more, full.remaining), (8, true, 3));
}

#[test]
fn the_stored_record_respects_the_field_limit_across_patches() {
    let mut server = MemoryServer::default();
    let created = push(
        &mut server,
        mutation(1, OpKind::Create, 0, many_fields("a", 600)),
    );
    assert_eq!(created.accepted.len(), 1);
    // Each patch is within the limit; the record after the second would not be.
    let grown = push(
        &mut server,
        mutation(2, OpKind::Update, 1, many_fields("b", 600)),
    );
    assert_eq!(grown.accepted.len(), 0);
    assert_eq!(grown.rejected[0].code, codes::RECORD_TOO_LARGE);
    assert!(
        !grown.rejected[0].retryable,
        "final: the client dead-letters it"
    );
    let stored = server.tenant("t").unwrap().record("notes", "n1").unwrap();
    assert_eq!(stored.fields.len(), 600, "the stored record is untouched");
    // Replacing fields (null removes) keeps a record within the limit: accepted.
    let mut patch = many_fields("b", 300);
    for i in 0..300 {
        patch[format!("a{i}")] = serde_json::Value::Null;
    }
    let swapped = push(&mut server, mutation(3, OpKind::Update, 1, patch));
    assert_eq!(swapped.accepted.len(), 1, "{swapped:?}");
}

#[test]
fn the_stored_record_respects_the_byte_limit_across_patches() {
    let mut server = MemoryServer::default();
    let big = "x".repeat(limits::MAX_RECORD_BYTES / 2);
    assert_eq!(
        push(
            &mut server,
            mutation(1, OpKind::Create, 0, json!({"a": big}))
        )
        .accepted
        .len(),
        1
    );
    let grown = push(
        &mut server,
        mutation(2, OpKind::Update, 1, json!({"b": big})),
    );
    assert_eq!(grown.rejected[0].code, codes::RECORD_TOO_LARGE);
    assert!(grown.rejected[0].message.contains("limit"));
    assert!(
        !grown.rejected[0].message.contains("xxxx"),
        "no payload echoed"
    );
}

#[test]
fn a_stamp_beyond_the_clock_bound_is_refused_for_good() {
    let now = 1_700_000_000_000;
    let bounds = Bounds::at(now);
    let mut m = mutation(1, OpKind::Create, 0, json!({}));
    m.hlc.wall_ms = now + limits::MAX_CLOCK_DRIFT_MS;
    assert!(matches!(
        decide_within(&m, None, 0, None, &AcceptAll, &bounds),
        Decision::Write(_)
    ));
    m.hlc.wall_ms = now + limits::MAX_CLOCK_DRIFT_MS + 1;
    assert_eq!(
        decide_within(&m, None, 0, None, &AcceptAll, &bounds),
        Decision::Reject {
            code: codes::CLOCK_AHEAD.into(),
            message: format!(
                "the stamp's wall time is {} ms ahead of the server's clock; at most {} ms is accepted",
                limits::MAX_CLOCK_DRIFT_MS + 1,
                limits::MAX_CLOCK_DRIFT_MS
            ),
            retryable: false,
        }
    );
    // The year 33658, as one client once sent.
    m.hlc.wall_ms = 1_000_000_000_000_000;
    assert!(matches!(
        decide_within(&m, None, 0, None, &AcceptAll, &bounds),
        Decision::Reject { .. }
    ));
    // Without a clock (the simulation) the stamp is not checked.
    assert!(matches!(
        decide_within(&m, None, 0, None, &AcceptAll, &Bounds::default()),
        Decision::Write(_)
    ));
}
