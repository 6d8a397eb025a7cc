//! The sync API against both backends: push and pull, idempotency (keys and op ids),
//! concurrent copies of one batch, and conflicts.

mod common;

use common::{assert_error, batch, mutation, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    push_then_pull,
    replay_is_one_effect,
    idempotency_key_reuse_is_refused,
    op_id_reuse_is_refused,
    concurrent_copies_apply_once,
    stale_base_is_a_conflict,
    one_push_sees_its_own_writes,
    a_push_longer_than_one_statement_stores_every_row,
);

async fn push_then_pull(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let create = mutation(
        "op1",
        "c1",
        1,
        "notes",
        "n1",
        "create",
        0,
        json!({"title": "hi", "body": "x"}),
    );
    let (status, resp) = s.push(&t, "k1", &batch("c1", vec![create])).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["accepted"], json!([{"op_id": "op1", "version": 1}]));
    assert_eq!(resp["cursor"], 1);

    let update = mutation(
        "op2",
        "c1",
        2,
        "notes",
        "n1",
        "update",
        1,
        json!({"title": "hello", "body": null}),
    );
    let (status, resp) = s.push(&t, "k2", &batch("c1", vec![update])).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["accepted"][0]["version"], 2);

    let (status, page) = s.pull(&t, 0, 100).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
    let record = &page["changes"][0];
    assert_eq!(
        (record["collection"].as_str(), record["id"].as_str()),
        (Some("notes"), Some("n1"))
    );
    assert_eq!(record["version"], 2);
    assert_eq!(record["fields"], json!({"title": "hello"}));
    assert_eq!(record["deleted"], false);
    assert_eq!(
        (page["cursor"].as_u64(), page["has_more"].as_bool()),
        (Some(2), Some(false))
    );

    let delete = mutation("op3", "c1", 3, "notes", "n1", "delete", 2, json!({}));
    let (_, resp) = s.push(&t, "k3", &batch("c1", vec![delete])).await;
    assert_eq!(resp["accepted"][0]["version"], 3);
    let (_, page) = s.pull(&t, 2, 100).await;
    assert_eq!(page["changes"][0]["deleted"], true);
    let (_, page) = s.pull(&t, 3, 100).await;
    assert_eq!(page["changes"], json!([]));
    assert_eq!(page["cursor"], 3);
    s.shutdown().await;
}

async fn replay_is_one_effect(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let body = batch(
        "c1",
        vec![
            mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({"v": 1})),
            mutation("b", "c1", 2, "notes", "n2", "create", 0, json!({"v": 2})),
        ],
    );
    let (s1, first) = s.push(&t, "batch-1", &body).await;
    let (s2, again) = s.push(&t, "batch-1", &body).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        common::sans_clock(&first),
        common::sans_clock(&again),
        "a retry answers exactly as the first time"
    );
    // The same ops under a new key (a client that lost its batch id) also replay.
    let (_, third) = s.push(&t, "batch-2", &body).await;
    assert_eq!(common::sans_clock(&first), common::sans_clock(&third));
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(page["cursor"], 2, "two writes, no more: {page}");
    s.shutdown().await;
}

async fn idempotency_key_reuse_is_refused(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let one = batch(
        "c1",
        vec![mutation(
            "a",
            "c1",
            1,
            "notes",
            "n1",
            "create",
            0,
            json!({"v": 1}),
        )],
    );
    let other = batch(
        "c1",
        vec![mutation(
            "b",
            "c1",
            2,
            "notes",
            "n2",
            "create",
            0,
            json!({"v": 2}),
        )],
    );
    assert_eq!(s.push(&t, "key", &one).await.0, StatusCode::OK);
    let (status, body) = s.push(&t, "key", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "idempotency_key_reused");
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(
        page["changes"].as_array().unwrap().len(),
        1,
        "the refused push wrote nothing"
    );
    s.shutdown().await;
}

async fn op_id_reuse_is_refused(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let one = batch(
        "c1",
        vec![mutation(
            "a",
            "c1",
            1,
            "notes",
            "n1",
            "create",
            0,
            json!({"v": 1}),
        )],
    );
    let changed = batch(
        "c1",
        vec![
            mutation("b", "c1", 2, "notes", "n2", "create", 0, json!({"v": 2})),
            mutation(
                "a",
                "c1",
                3,
                "notes",
                "n1",
                "create",
                0,
                json!({"v": "changed"}),
            ),
        ],
    );
    assert_eq!(s.push(&t, "k1", &one).await.0, StatusCode::OK);
    let (status, body) = s.push(&t, "k2", &changed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "op_id_reused");
    assert!(body["error"]["message"].as_str().unwrap().contains("`a`"));
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(
        page["cursor"], 1,
        "nothing of the refused push was applied: {page}"
    );
    s.shutdown().await;
}

async fn concurrent_copies_apply_once(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let mutations = (1..=5)
        .map(|i| {
            mutation(
                &format!("op{i}"),
                "c1",
                i,
                "notes",
                &format!("n{i}"),
                "create",
                0,
                json!({"i": i}),
            )
        })
        .collect();
    let body = batch("c1", mutations);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, token, body) = (s.url.clone(), t.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{url}/v1/sync/mutations"))
                .bearer_auth(token)
                .header("Idempotency-Key", "the-batch")
                .json(&body)
                .send()
                .await
                .unwrap();
            common::read(resp).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (status, resp) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{resp}");
        answers.push(resp);
    }
    assert!(
        answers
            .iter()
            .all(|a| common::sans_clock(a) == common::sans_clock(&answers[0])),
        "every copy gets the same answer"
    );
    assert_eq!(answers[0]["accepted"].as_array().unwrap().len(), 5);
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(page["cursor"], 5, "exactly one effect: {page}");
    assert!(page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["version"].as_u64() <= Some(5)));
    s.shutdown().await;
}

async fn stale_base_is_a_conflict(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let create = mutation(
        "a",
        "c1",
        1,
        "notes",
        "n1",
        "create",
        0,
        json!({"title": "one"}),
    );
    assert_eq!(
        s.push(&t, "k1", &batch("c1", vec![create])).await.0,
        StatusCode::OK
    );
    let first = mutation(
        "b",
        "c1",
        2,
        "notes",
        "n1",
        "update",
        1,
        json!({"title": "two"}),
    );
    assert_eq!(
        s.push(&t, "k2", &batch("c1", vec![first])).await.1["accepted"][0]["version"],
        2
    );
    let stale = mutation(
        "c",
        "c2",
        1,
        "notes",
        "n1",
        "update",
        1,
        json!({"title": "three"}),
    );
    let (status, resp) = s.push(&t, "k3", &batch("c2", vec![stale.clone()])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["accepted"], json!([]));
    assert_eq!(resp["conflicts"][0]["op_id"], "c");
    assert_eq!(
        resp["conflicts"][0]["server"]["fields"],
        json!({"title": "two"})
    );
    assert_eq!(resp["conflicts"][0]["server"]["version"], 2);
    // A replay of the conflicting op answers with the record as it is now.
    let (_, again) = s.push(&t, "k4", &batch("c2", vec![stale])).await;
    assert_eq!(again["conflicts"], resp["conflicts"]);
    s.shutdown().await;
}

/// The server reads a push's records, ops and seqs in bulk before applying it: ops later in
/// the same push must still see what earlier ones wrote, and the client's seq must be saved.
async fn one_push_sees_its_own_writes(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let body = batch(
        "c1",
        vec![
            mutation(
                "a",
                "c1",
                1,
                "notes",
                "n1",
                "create",
                0,
                json!({"title": "one"}),
            ),
            // Based on the version the first op just wrote.
            mutation(
                "b",
                "c1",
                2,
                "notes",
                "n1",
                "update",
                1,
                json!({"title": "two"}),
            ),
            // Based on the first op's version again: stale by now.
            mutation(
                "c",
                "c1",
                3,
                "notes",
                "n1",
                "update",
                1,
                json!({"title": "three"}),
            ),
        ],
    );
    let (status, resp) = s.push(&t, "k1", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(
        resp["accepted"],
        json!([{"op_id": "a", "version": 1}, {"op_id": "b", "version": 2}])
    );
    assert_eq!(resp["conflicts"][0]["op_id"], "c");
    assert_eq!(resp["conflicts"][0]["server"]["version"], 2);
    assert_eq!(
        resp["conflicts"][0]["server"]["fields"],
        json!({"title": "two"})
    );

    // The client's last seq (3) was stored: a new op at seq 3 is out of order, seq 4 applies.
    let late = mutation(
        "x",
        "c1",
        3,
        "notes",
        "n2",
        "create",
        0,
        json!({"title": "late"}),
    );
    let (_, resp) = s.push(&t, "k-late", &batch("c1", vec![late])).await;
    assert_eq!(resp["rejected"][0]["code"], "out_of_order", "{resp}");
    let next = mutation(
        "d",
        "c1",
        4,
        "notes",
        "n1",
        "update",
        2,
        json!({"title": "four"}),
    );
    let (status, resp) = s.push(&t, "k2", &batch("c1", vec![next])).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["accepted"], json!([{"op_id": "d", "version": 3}]));
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(page["changes"][0]["fields"], json!({"title": "four"}));
    s.shutdown().await;
}

/// A push's records and ops are written as multi-row statements of at most 400 rows: a push of
/// 450 mutations (two statements per table, the second one partial) stores every record and
/// every op, so a replay under a new key is answered from the stored ops.
async fn a_push_longer_than_one_statement_stores_every_row(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let n = 450u64;
    let mutations = (1..=n)
        .map(|i| {
            let id = format!("n{i:04}");
            mutation(
                &format!("op{i}"),
                "c1",
                i,
                "notes",
                &id,
                "create",
                0,
                json!({"i": i}),
            )
        })
        .collect();
    let body = batch("c1", mutations);
    let (status, first) = s.push(&t, "k1", &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["accepted"].as_array().map(Vec::len), Some(n as usize));

    let mut stored = std::collections::BTreeMap::new();
    let mut cursor = 0;
    loop {
        let (status, page) = s.pull(&t, cursor, 1000).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for change in page["changes"].as_array().expect("changes") {
            stored.insert(
                change["id"].as_str().expect("id").to_owned(),
                (change["version"].as_u64(), change["fields"]["i"].as_u64()),
            );
        }
        cursor = page["cursor"].as_u64().expect("cursor");
        if page["has_more"] != json!(true) {
            break;
        }
    }
    assert_eq!(stored.len(), n as usize);
    for i in 1..=n {
        assert_eq!(
            stored[&format!("n{i:04}")],
            (Some(i), Some(i)),
            "record n{i:04}"
        );
    }

    let (status, again) = s.push(&t, "k2", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["accepted"], first["accepted"], "every op was stored");
    s.shutdown().await;
}
