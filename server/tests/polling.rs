//! Cheap polling: a conditional pull (`If-None-Match: "<epoch>.<cursor>"`) is answered 304
//! when nothing changed after the cursor, and never once there is news — including news
//! pushed through a second server process on the same database.

mod common;

use common::transport::{HttpTransport, StaticToken, SystemClock};
use common::{batch, mutation, read, unique, Backend, TestServer};
use ferry_core::engine::{CycleOutcome, Engine};
use ferry_core::memory::{MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::replica::{Change, ReplicaConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

on_both_backends!(
    not_modified_only_while_nothing_is_new,
    never_not_modified_after_a_sibling_push,
    an_idle_engine_polls_for_304s_and_still_gets_the_news
);

/// A conditional pull: the status, the body (Null for 304) and the ETag.
async fn poll(
    s: &TestServer,
    token: &str,
    cursor: u64,
    tag: &str,
) -> (StatusCode, Value, Option<String>) {
    let resp = s
        .http
        .get(format!("{}/v1/sync/changes?cursor={cursor}", s.url))
        .bearer_auth(token)
        .header("If-None-Match", tag)
        .send()
        .await
        .expect("pull request");
    let etag = resp
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = read(resp).await;
    (status, body, etag)
}

fn note(op: &str, seq: u64, id: &str) -> Value {
    batch(
        "c1",
        vec![mutation(
            op,
            "c1",
            seq,
            "notes",
            id,
            "create",
            0,
            json!({"title": op}),
        )],
    )
}

async fn not_modified_only_while_nothing_is_new(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let tenant = unique("poll");
    let t = s.token(&tenant, "alice");
    assert_eq!(
        s.push(&t, "k1", &note("a", 1, "n1")).await.0,
        StatusCode::OK
    );

    // A plain pull names the page's validator.
    let (status, page, etag) = poll(&s, &t, 0, "\"unrelated.0\"").await;
    assert_eq!(status, StatusCode::OK, "another epoch gets a full page");
    let epoch = page["epoch"].as_str().unwrap().to_owned();
    assert_eq!(page["cursor"], 1);
    assert_eq!(etag.as_deref(), Some(format!("\"{epoch}.1\"").as_str()));

    // Nothing after cursor 1: 304, no body, the same validator back.
    let tag = format!("\"{epoch}.1\"");
    let (status, body, etag) = poll(&s, &t, 1, &tag).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(body, Value::Null);
    assert_eq!(etag.as_deref(), Some(tag.as_str()));

    // A validator for another cursor than the request's, or a weak one: a full page.
    let (status, _, _) = poll(&s, &t, 1, &format!("\"{epoch}.0\"")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = poll(&s, &t, 1, &format!("W/{tag}")).await;
    assert_eq!(status, StatusCode::OK);
    // A cursor the server never reached (its history was lost) is not "unchanged".
    let (status, page, _) = poll(&s, &t, 5, &format!("\"{epoch}.5\"")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["head"], 1,
        "the client must see the head behind its cursor"
    );

    // After this tenant's push the same poll gets the news.
    assert_eq!(
        s.push(&t, "k2", &note("b", 2, "n2")).await.0,
        StatusCode::OK
    );
    let (status, page, etag) = poll(&s, &t, 1, &tag).await;
    assert_eq!(status, StatusCode::OK, "never 304 after a push");
    assert_eq!(page["changes"][0]["id"], "n2");
    assert_eq!(etag, Some(format!("\"{epoch}.2\"")));

    // Another tenant's push does not disturb this tenant's 304.
    let other = s.token(&unique("other"), "bob");
    assert_eq!(
        s.push(&other, "k1", &note("x", 1, "n9")).await.0,
        StatusCode::OK
    );
    let tag = format!("\"{epoch}.2\"");
    assert_eq!(poll(&s, &t, 2, &tag).await.0, StatusCode::NOT_MODIFIED);
    s.shutdown().await;
}

async fn never_not_modified_after_a_sibling_push(backend: &Backend) {
    let a = TestServer::start(backend).await;
    let b = a.sibling().await;
    let tenant = unique("poll2");
    let t = a.token(&tenant, "alice");
    assert_eq!(
        a.push(&t, "k0", &note("a0", 1, "n0")).await.0,
        StatusCode::OK
    );
    let (_, page, _) = poll(&b, &t, 0, "\"none.0\"").await;
    let epoch = page["epoch"].as_str().unwrap().to_owned();
    // Each round: B confirms nothing is new, A takes a push, and B's very next poll — sent
    // right after A answered — must carry it.
    for round in 1..=20u64 {
        let cursor = round;
        let tag = format!("\"{epoch}.{cursor}\"");
        assert_eq!(
            poll(&b, &t, cursor, &tag).await.0,
            StatusCode::NOT_MODIFIED,
            "round {round}: nothing new yet"
        );
        let id = format!("n{round}");
        let pushed = a
            .push(
                &t,
                &format!("k{round}"),
                &note(&format!("a{round}"), round + 1, &id),
            )
            .await;
        assert_eq!(pushed.0, StatusCode::OK, "{}", pushed.1);
        let (status, page, _) = poll(&b, &t, cursor, &tag).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "round {round}: 304 after a sibling's push"
        );
        assert_eq!(page["changes"][0]["id"], id.as_str());
    }
    b.shutdown().await;
    a.shutdown().await;
}

type Client = Engine<MemoryStore, HttpTransport, StaticToken, SystemClock, SeededEntropy>;

async fn engine(transport: HttpTransport, token: &str, seed: u64) -> Client {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    Engine::open(
        MemoryStore::new(),
        transport,
        StaticToken(token.to_owned()),
        SystemClock,
        SeededEntropy::new(seed),
        config,
    )
    .await
    .expect("engine opens")
}

/// The engine's side: an idle poll comes back 304 and changes nothing; a push through the
/// other server process is pulled on the next cycle.
async fn an_idle_engine_polls_for_304s_and_still_gets_the_news(backend: &Backend) {
    let a = TestServer::start(backend).await;
    let b = a.sibling().await;
    let t = a.token(&unique("poll3"), "alice");
    let writer = engine(HttpTransport::new(&a.url), &t, 1).await;
    let reader_net = HttpTransport::new(&b.url);
    let reader = engine(reader_net.clone(), &t, 2).await;

    let fields = json!({"title": "first"}).as_object().cloned().unwrap();
    let (_, ticket) = writer.write("notes", "n1", Change::Put(fields)).unwrap();
    writer.flush(ticket).await.unwrap();
    assert_eq!(writer.sync().await, CycleOutcome::Synced);
    assert_eq!(reader.sync().await, CycleOutcome::Synced);
    assert_eq!(reader_net.not_modified.load(Ordering::Relaxed), 0);
    let cursor = reader.replica().cursor();
    for _ in 0..3 {
        assert_eq!(reader.sync().await, CycleOutcome::Synced);
    }
    assert_eq!(reader_net.not_modified.load(Ordering::Relaxed), 3);
    assert_eq!(reader.replica().cursor(), cursor);
    assert!(reader.replica().record("notes", "n1").is_some());

    let fields = json!({"title": "second"}).as_object().cloned().unwrap();
    let (_, ticket) = writer.write("notes", "n2", Change::Put(fields)).unwrap();
    writer.flush(ticket).await.unwrap();
    assert_eq!(writer.sync().await, CycleOutcome::Synced);
    assert_eq!(reader.sync().await, CycleOutcome::Synced);
    assert_eq!(reader_net.not_modified.load(Ordering::Relaxed), 3);
    assert!(reader.replica().record("notes", "n2").is_some());
    b.shutdown().await;
    a.shutdown().await;
}
