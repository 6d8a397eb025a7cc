//! The server's part of the PWA features: a push from an app data version older than the
//! configured minimum is refused with 409 `upgrade_required` before anything is applied (and
//! the same batch goes through once it names a new enough version), and a push naming its
//! priority uses that priority's share of the tenant's limits, so critical pushes still get
//! through when background ones are refused; a pull naming collections (a first sync's
//! critical-first pass) pages through those collections only, in log order.

mod common;

use common::{assert_error, batch, mutation, unique, Backend, TestServer};
use ferry_server::data_version::DataVersions;
use ferry_server::limiter::LimitConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;

on_both_backends!(an_older_data_version_is_refused_before_anything_is_applied);
on_both_backends!(a_pull_naming_collections_pages_through_those_only);

async fn an_older_data_version_is_refused_before_anything_is_applied(backend: &Backend) {
    let strict = unique("strict");
    let s = TestServer::start_with(backend, |c| {
        c.data_versions = DataVersions {
            minimum: 0,
            tenants: HashMap::from([(strict.clone(), 2)]),
            collections: HashMap::from([("expenses".to_string(), 3)]),
        }
    })
    .await;
    let t = s.token(&strict, "alice");
    let body = batch(
        "c1",
        vec![mutation(
            "c1.1",
            "c1",
            1,
            "notes",
            "n1",
            "create",
            0,
            json!({"title": "old shape"}),
        )],
    );
    for headers in [&[][..], &[("Ferry-Data-Version", "1")][..]] {
        let (status, answer) = s.push_with_headers(&t, "k1", &body, headers).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_error(&answer, "upgrade_required");
    }
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(page["changes"], json!([]), "nothing was applied: {page}");

    // The same batch (same key, same body) goes through from a new enough client.
    let (status, answer) = s
        .push_with_headers(&t, "k1", &body, &[("Ferry-Data-Version", "2")])
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"][0]["op_id"], "c1.1");

    // A collection's minimum applies to pushes writing it, in any tenant.
    let other = s.token(&unique("other"), "bob");
    let expense = batch(
        "c2",
        vec![mutation(
            "c2.1",
            "c2",
            1,
            "expenses",
            "e1",
            "create",
            0,
            json!({"amount": 1}),
        )],
    );
    let (status, answer) = s
        .push_with_headers(&other, "k2", &expense, &[("Ferry-Data-Version", "2")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_error(&answer, "upgrade_required");
    let note = batch(
        "c3",
        vec![mutation(
            "c3.1",
            "c3",
            1,
            "notes",
            "n",
            "create",
            0,
            json!({}),
        )],
    );
    assert_eq!(
        s.push_with_headers(&other, "k3", &note, &[]).await.0,
        StatusCode::OK
    );

    let (status, answer) = s
        .push_with_headers(&t, "k4", &body, &[("Ferry-Data-Version", "two")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&answer, "invalid_request");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_pushes_get_through_when_background_ones_are_refused() {
    // A tenant bucket of 10 requests and almost no refill.
    let s = TestServer::start_with(&Backend::Sqlite, |c| {
        c.limits = LimitConfig {
            max_in_flight: 0,
            rate_per_sec: 0.001,
            burst: 10.0,
        }
    })
    .await;
    let t = s.token(&unique("t"), "alice");
    let mut seq = 0;
    let mut push = |priority: &'static str| {
        seq += 1;
        let body = batch(
            "c",
            vec![mutation(
                &format!("c.{seq}"),
                "c",
                seq,
                "notes",
                &format!("n{seq}"),
                "create",
                0,
                json!({}),
            )],
        );
        (format!("k{seq}"), body, priority)
    };
    let mut background_ok = 0;
    loop {
        let (key, body, p) = push("background");
        let (status, answer) = s
            .push_with_headers(&t, &key, &body, &[("Ferry-Priority", p)])
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_error(&answer, "rate_limited");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{answer}");
        background_ok += 1;
        assert!(background_ok < 10, "background never ran out of its share");
    }
    assert_eq!(background_ok, 5, "background may use half the bucket");
    // Critical pushes still go through: the other half was kept for them.
    for _ in 0..5 {
        let (key, body, p) = push("critical");
        let (status, answer) = s
            .push_with_headers(&t, &key, &body, &[("Ferry-Priority", p)])
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (key, body, p) = push("critical");
    assert_eq!(
        s.push_with_headers(&t, &key, &body, &[("Ferry-Priority", p)])
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS,
        "the tenant's whole share is spent"
    );
    let (key, body, _) = push("x");
    let (status, answer) = s
        .push_with_headers(&t, &key, &body, &[("Ferry-Priority", "urgent")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&answer, "invalid_request");
    s.shutdown().await;
}

/// `collections=`: only the named collections, in log order, paged with the same cursor
/// rules (the page's cursor is its last record's position); the unfiltered pull is
/// unchanged; malformed lists are refused with `invalid_message`-style 400s.
async fn a_pull_naming_collections_pages_through_those_only(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("filtered"), "alice");
    // The log: notes n0..n5, alerts a0..a2 and tasks t0..t1 interleaved.
    let order = [
        ("notes", "n0"),
        ("alerts", "a0"),
        ("notes", "n1"),
        ("tasks", "t0"),
        ("notes", "n2"),
        ("notes", "n3"),
        ("alerts", "a1"),
        ("notes", "n4"),
        ("tasks", "t1"),
        ("alerts", "a2"),
        ("notes", "n5"),
    ];
    for (seq, (collection, id)) in order.iter().enumerate() {
        let seq = seq as u64 + 1;
        let body = batch(
            "c1",
            vec![mutation(
                &format!("c1.{seq}"),
                "c1",
                seq,
                collection,
                id,
                "create",
                0,
                json!({"v": id}),
            )],
        );
        let (status, answer) = s.push(&t, &format!("k{seq}"), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let ids = |page: &Value| -> Vec<String> {
        page["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // Alerts and tasks, two a page: a0 t0 | a1 t1 | a2, the cursor at each page's last record.
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page) = s
            .pull_query(
                &t,
                &format!("cursor={cursor}&limit=2&collections=tasks,alerts"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for r in page["changes"].as_array().unwrap() {
            assert!(
                ["alerts", "tasks"].contains(&r["collection"].as_str().unwrap()),
                "{page}"
            );
            assert!(page["cursor"].as_u64().unwrap() >= r["version"].as_u64().unwrap());
        }
        seen.extend(ids(&page));
        if let Some(last) = page["changes"].as_array().unwrap().last() {
            assert_eq!(
                page["cursor"], last["version"],
                "the cursor is the page's last record"
            );
        }
        if !page["has_more"].as_bool().unwrap() {
            assert_eq!(page["remaining"], 0);
            break;
        }
        assert!(page["remaining"].as_u64().unwrap() >= 1, "{page}");
        cursor = page["cursor"].as_u64().unwrap();
    }
    assert_eq!(seen, ["a0", "t0", "a1", "t1", "a2"]);
    assert_eq!(pages, 3);

    // Unfiltered: the whole log, as before.
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(ids(&page).len(), order.len());
    // A collection nobody wrote: an empty last page.
    let (status, page) = s.pull_query(&t, "cursor=0&collections=photos").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["changes"], json!([]));
    assert_eq!(page["has_more"], false);

    for bad in [
        "collections=",
        "collections=notes,,tasks",
        "collections=Notes",
        "collections=a%20b",
    ] {
        let (status, answer) = s.pull_query(&t, &format!("cursor=0&{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert_error(&answer, "invalid_message");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("collections"),
            "{bad}: {answer}"
        );
    }
    s.shutdown().await;
}
