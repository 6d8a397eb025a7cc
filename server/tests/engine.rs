//! Clients built from ferry-core's `Engine` sync through the real HTTP server: two engines
//! on one server, and (scale-out) engines spread over two servers sharing one database,
//! with a poke crossing processes through PostgreSQL LISTEN/NOTIFY.

mod common;

use common::transport::{HttpTransport, StaticToken, SystemClock};
use common::{unique, Backend, TestServer};
use ferry_core::engine::{CycleOutcome, Engine};
use ferry_core::memory::{MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::protocol::Fields;
use ferry_core::replica::{Change, ReplicaConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;

type Client = Engine<MemoryStore, HttpTransport, StaticToken, SystemClock, SeededEntropy>;

/// Every live record: (collection, id) -> fields.
type Snapshot = BTreeMap<(String, String), Value>;

const COLLECTIONS: [(&str, Policy); 3] = [
    ("notes", Policy::MergeFields),
    ("tasks", Policy::LastWriterWins),
    ("expenses", Policy::ServerWinsReview),
];

async fn open(url: &str, token: &str, seed: u64) -> Client {
    let config = ReplicaConfig::new(COLLECTIONS.iter().map(|(c, p)| (c.to_string(), *p)));
    Engine::open(
        MemoryStore::new(),
        HttpTransport::new(url),
        StaticToken(token.to_owned()),
        SystemClock,
        SeededEntropy::new(seed),
        config,
    )
    .await
    .expect("engine opens")
}

fn fields(v: Value) -> Fields {
    v.as_object().expect("an object").clone()
}

async fn write(engine: &Client, collection: &str, id: &str, change: Change) {
    let (_, ticket) = engine.write(collection, id, change).expect("local write");
    engine.flush(ticket).await.expect("durable");
}

async fn sync(engine: &Client) {
    let outcome = engine.sync().await;
    assert_eq!(
        outcome,
        CycleOutcome::Synced,
        "state: {:?}",
        engine.sync_state()
    );
}

fn snapshot(engine: &Client) -> Snapshot {
    let replica = engine.replica();
    let mut out = Snapshot::new();
    for (collection, _) in COLLECTIONS {
        for r in replica.live_records(collection) {
            out.insert(
                (r.collection.clone(), r.id.clone()),
                Value::Object(r.state.fields.clone()),
            );
        }
    }
    out
}

/// The server's view: every live record, pulled page by page.
async fn server_snapshot(s: &TestServer, token: &str) -> Snapshot {
    let (mut cursor, mut out) = (0, Snapshot::new());
    loop {
        let (status, page) = s.pull(token, cursor, 2).await;
        assert!(status.is_success(), "{page}");
        for r in page["changes"].as_array().unwrap() {
            let key = (
                r["collection"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            );
            if r["deleted"].as_bool().unwrap() {
                out.remove(&key);
            } else {
                out.insert(key, r["fields"].clone());
            }
        }
        cursor = page["cursor"].as_u64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            return out;
        }
    }
}

/// Writes on every engine, including concurrent edits of shared records, then syncs all of
/// them until quiet and checks that they agree with each other and with the server.
async fn converge(servers: &[&TestServer], tenant: &str) {
    let token = servers[0].token(tenant, "alice");
    let mut engines = Vec::new();
    for (i, server) in servers.iter().cycle().take(4).enumerate() {
        engines.push(open(&server.url, &token, 100 + i as u64).await);
    }
    // A shared note and task everyone will edit concurrently.
    write(
        &engines[0],
        "notes",
        "shared",
        Change::Put(fields(json!({"title": "start"}))),
    )
    .await;
    write(
        &engines[0],
        "tasks",
        "t1",
        Change::Put(fields(json!({"done": false}))),
    )
    .await;
    sync(&engines[0]).await;
    for e in &engines {
        sync(e).await;
    }
    for (i, e) in engines.iter().enumerate() {
        write(
            e,
            "notes",
            &format!("own-{i}"),
            Change::Put(fields(json!({"by": i}))),
        )
        .await;
        // Each engine edits its own field of the shared note: the merge keeps all of them.
        write(
            e,
            "notes",
            "shared",
            Change::Patch(fields(json!({format!("f{i}"): i}))),
        )
        .await;
        write(
            e,
            "tasks",
            "t1",
            Change::Patch(fields(json!({"done": i % 2 == 0, "by": i}))),
        )
        .await;
        write(
            e,
            "expenses",
            &format!("e{i}"),
            Change::Put(fields(json!({"amount": i * 10}))),
        )
        .await;
    }
    write(&engines[1], "notes", "own-1", Change::Delete).await;
    for _ in 0..3 {
        for e in &engines {
            sync(e).await;
        }
    }
    let server = server_snapshot(servers[0], &token).await;
    for (i, e) in engines.iter().enumerate() {
        assert_eq!(snapshot(e), server, "engine {i} differs from the server");
        assert_eq!(e.replica().conflicts().count(), 0);
        assert_eq!(e.replica().dead_letters().count(), 0);
        assert_eq!(e.replica().outbox_depth(), 0);
    }
    let shared = &server[&("notes".to_owned(), "shared".to_owned())];
    for i in 0..4 {
        assert_eq!(
            shared[format!("f{i}")],
            i,
            "field edits of every engine survive: {shared}"
        );
    }
    assert!(!server.contains_key(&("notes".to_owned(), "own-1".to_owned())));
    assert_eq!(
        server.len(),
        1 + 1 + 3 + 4,
        "shared, t1, three own notes, four expenses: {server:?}"
    );
    for s in &servers[1..] {
        assert_eq!(
            server_snapshot(s, &token).await,
            server,
            "every server shows the same data"
        );
    }
}

#[tokio::test]
async fn two_engines_converge_through_http() {
    let s = TestServer::start(&Backend::Sqlite).await;
    converge(&[&s], &unique("t")).await;
    s.shutdown().await;
}

on_both_backends!(engines_converge_across_two_servers);

async fn engines_converge_across_two_servers(backend: &Backend) {
    let a = TestServer::start(backend).await;
    let b = a.sibling().await;
    converge(&[&a, &b], &unique("t")).await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poke_crosses_processes() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: FERRY_TEST_POSTGRES_URL is not set");
        return;
    };
    let a = TestServer::start(&backend).await;
    let b = a.sibling().await;
    let token = a.token(&unique("t"), "alice");
    let mut stream = common::events::EventStream::open(&b.url, &token).await;
    assert_eq!(stream.next_poke().await, 0);
    let writer = open(&a.url, &token, 7).await;
    write(
        &writer,
        "notes",
        "n1",
        Change::Put(fields(json!({"title": "hello"}))),
    )
    .await;
    sync(&writer).await;
    assert_eq!(
        stream.next_poke().await,
        1,
        "a push on server a pokes a stream held by server b"
    );
    // The poked client pulls the change from its own server.
    let reader = open(&b.url, &token, 8).await;
    sync(&reader).await;
    assert_eq!(snapshot(&reader), snapshot(&writer));
    b.shutdown().await;
    a.shutdown().await;
}
