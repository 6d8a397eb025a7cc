//! The API's guard rails against both backends: tenant isolation, validation, paging,
//! compaction (410), and JSON errors for bad requests and missing credentials.

mod common;

use common::{assert_error, batch, mutation, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(
    tenants_are_isolated,
    validation_rejects_for_good,
    pull_pages,
    compaction_expires_old_cursors,
    bad_requests_are_json_errors,
);

async fn tenants_are_isolated(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let (a, b) = (s.token(&unique("a"), "alice"), s.token(&unique("b"), "bob"));
    let secret = mutation(
        "op",
        "c1",
        1,
        "notes",
        "n1",
        "create",
        0,
        json!({"secret": "a's"}),
    );
    assert_eq!(
        s.push(&a, "k", &batch("c1", vec![secret])).await.0,
        StatusCode::OK
    );
    let (status, page) = s.pull(&b, 0, 1000).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["changes"],
        json!([]),
        "tenant b sees nothing of tenant a"
    );
    assert_eq!(page["cursor"], 0);
    // The same op id, key and record id in tenant b are b's own: a fresh effect.
    let own = mutation(
        "op",
        "c1",
        1,
        "notes",
        "n1",
        "create",
        0,
        json!({"mine": true}),
    );
    let (status, resp) = s.push(&b, "k", &batch("c1", vec![own])).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["accepted"][0]["version"], 1);
    let (_, page) = s.pull(&b, 0, 1000).await;
    assert_eq!(page["changes"][0]["fields"], json!({"mine": true}));
    let (_, page) = s.pull(&a, 0, 1000).await;
    assert_eq!(page["changes"][0]["fields"], json!({"secret": "a's"}));
    s.shutdown().await;
}

async fn validation_rejects_for_good(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let body = batch(
        "c1",
        vec![
            mutation(
                "neg",
                "c1",
                1,
                "expenses",
                "e1",
                "create",
                0,
                json!({"amount": -5}),
            ),
            mutation(
                "text",
                "c1",
                2,
                "expenses",
                "e2",
                "create",
                0,
                json!({"amount": "lots"}),
            ),
            mutation(
                "ok",
                "c1",
                3,
                "expenses",
                "e3",
                "create",
                0,
                json!({"amount": 12.5}),
            ),
        ],
    );
    let (status, resp) = s.push(&t, "k", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let rejected = resp["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    for r in rejected {
        assert_eq!(r["code"], "validation_failed");
        assert_eq!(r["retryable"], false);
        assert!(r["message"].as_str().unwrap().contains("amount"));
    }
    assert_eq!(resp["accepted"], json!([{"op_id": "ok", "version": 1}]));
    s.shutdown().await;
}

async fn pull_pages(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let mutations = (1..=7)
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
    assert_eq!(
        s.push(&t, "k", &batch("c1", mutations)).await.0,
        StatusCode::OK
    );
    let (mut cursor, mut seen, mut pages) = (0, Vec::new(), 0);
    loop {
        let (status, page) = s.pull(&t, cursor, 3).await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        let changes = page["changes"].as_array().unwrap();
        seen.extend(changes.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        cursor = page["cursor"].as_u64().unwrap();
        assert_eq!(page["remaining"].as_u64().unwrap(), 7 - seen.len() as u64);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=7).map(|i| format!("n{i}")).collect::<Vec<_>>());
    // Limits are clamped: 0 means 1, more than 1000 means 1000.
    assert_eq!(
        s.pull(&t, 0, 0).await.1["changes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.pull(&t, 0, 5000).await.1["changes"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    s.shutdown().await;
}

async fn compaction_expires_old_cursors(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let tenant = unique("t");
    let t = s.token(&tenant, "alice");
    let body = batch(
        "c1",
        vec![
            mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({"v": 1})),
            mutation("b", "c1", 2, "notes", "n2", "create", 0, json!({"v": 2})),
            mutation("c", "c1", 3, "notes", "n1", "delete", 1, json!({})),
        ],
    );
    assert_eq!(s.push(&t, "k", &body).await.0, StatusCode::OK);
    let compact = |token: String| {
        let http = s.http.clone();
        let url = format!("{}/v1/admin/compact", s.url);
        async move {
            common::read(
                http.post(url)
                    .bearer_auth(token)
                    .json(&json!({"before_cursor": 3}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, body) = compact(t.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "forbidden");
    let (status, report) = compact(s.admin_token(&tenant)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report, json!({"removed": 1, "horizon": 3}));
    let (status, body) = s.pull(&t, 1, 100).await;
    assert_eq!(status, StatusCode::GONE);
    assert_error(&body, "cursor_expired");
    let (status, page) = s.pull(&t, 0, 100).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["changes"].as_array().unwrap().len(),
        1,
        "the tombstone is gone: {page}"
    );
    assert_eq!(page["cursor"], 2);
    s.shutdown().await;
}

async fn bad_requests_are_json_errors(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let url = format!("{}/v1/sync/mutations", s.url);
    let good = batch(
        "c1",
        vec![mutation(
            "a",
            "c1",
            1,
            "notes",
            "n1",
            "create",
            0,
            json!({}),
        )],
    );
    let send =
        |req: reqwest::RequestBuilder| async move { common::read(req.send().await.unwrap()).await };

    let (status, body) = send(s.http.post(&url).header("Idempotency-Key", "k").json(&good)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "token_missing");
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth("forged.token")
            .header("Idempotency-Key", "k")
            .json(&good),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "token_invalid");
    let (status, body) = send(s.http.post(&url).bearer_auth(&t).json(&good)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "missing_idempotency_key");
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth(&t)
            .header("Idempotency-Key", "k")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
    let zero_seq = batch(
        "c1",
        vec![mutation(
            "a",
            "c1",
            0,
            "notes",
            "n1",
            "create",
            0,
            json!({}),
        )],
    );
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth(&t)
            .header("Idempotency-Key", "k")
            .json(&zero_seq),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_message");
    assert!(body["error"]["message"].as_str().unwrap().contains("seq"));
    let huge = vec![b' '; ferry_core::protocol::limits::MAX_PUSH_BYTES + 1];
    let (status, body) = send(
        s.http
            .post(&url)
            .bearer_auth(&t)
            .header("Idempotency-Key", "k")
            .body(huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "too_large");

    let pull = format!("{}/v1/sync/changes", s.url);
    let (status, body) = send(s.http.get(&pull)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "token_missing");
    let (status, body) = send(s.http.get(format!("{pull}?cursor=abc")).bearer_auth(&t)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");
    let (status, body) = send(s.http.get(format!("{}/v1/sync/events", s.url))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "token_missing");
    let (status, body) = send(s.http.get(format!("{}/v1/nope", s.url))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, body) = send(s.http.get(&url)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");
    let (status, body) = send(
        s.http
            .post(format!("{}/v1/demo/token", s.url))
            .json(&json!({"user": "x"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no demo tokens without --demo"
    );
    assert_error(&body, "not_found");
    assert_eq!(
        body["error"]["message"],
        Value::String("no such route".into())
    );
    s.shutdown().await;
}
