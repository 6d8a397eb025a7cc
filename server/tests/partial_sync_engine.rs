//! Partial sync end to end: ferry-core engines (alice, bob, and carol with the `manager`
//! role) sync through the real server on both backends. Bob's replica never holds alice's
//! private note, holds the one shared with him until it is unshared, and his edit of a note
//! taken away from him becomes a `forbidden` dead letter; devices keep the view fingerprint
//! they send back with each pull.

mod common;

use common::transport::{HttpTransport, StaticToken, SystemClock};
use common::{unique, Backend, TestServer};
use ferry_core::engine::Engine;
use ferry_core::memory::{MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_server::validation::Rules;
use serde_json::{json, Value};

type Client = Engine<MemoryStore, HttpTransport, StaticToken, SystemClock, SeededEntropy>;

const CONFIG: &str = r#"
[collections.notes]
read = ["owner", "users_in:shared_with", "role:manager"]
update = ["owner", "users_in:shared_with"]
"#;

async fn open(url: &str, token: String, seed: u64) -> Client {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    Engine::open(
        MemoryStore::new(),
        HttpTransport::new(url),
        StaticToken(token),
        SystemClock,
        SeededEntropy::new(seed),
        config,
    )
    .await
    .expect("engine opens")
}

async fn put(engine: &Client, id: &str, v: Value) {
    let (_, ticket) = engine
        .write("notes", id, Change::Put(v.as_object().unwrap().clone()))
        .expect("local write");
    engine.flush(ticket).await.expect("durable");
}

async fn patch(engine: &Client, id: &str, v: Value) {
    let (_, ticket) = engine
        .write("notes", id, Change::Patch(v.as_object().unwrap().clone()))
        .expect("local write");
    engine.flush(ticket).await.expect("durable");
}

fn holds(engine: &Client, id: &str) -> bool {
    engine.replica().record("notes", id).is_some()
}

async fn devices_hold_only_what_their_users_may_read(backend: &Backend) {
    let s = TestServer::start_with(backend, |config| {
        config.rules = Rules::from_toml(CONFIG).unwrap();
    })
    .await;
    let tenant = unique("ps-engine");
    let token = |user: &str, roles: &[&str]| {
        s.signer
            .issue_with_roles(&tenant, user, 3600, roles)
            .unwrap()
    };
    let alice = open(&s.url, token("alice", &[]), 1).await;
    let bob = open(&s.url, token("bob", &[]), 2).await;
    let carol = open(&s.url, token("carol", &["manager"]), 3).await;
    put(
        &alice,
        "private",
        json!({"title": "salary talk", "shared_with": []}),
    )
    .await;
    put(
        &alice,
        "shared",
        json!({"title": "plan", "shared_with": ["bob"]}),
    )
    .await;
    alice.sync().await;
    bob.sync().await;
    carol.sync().await;
    assert!(
        !holds(&bob, "private"),
        "bob must never hold alice's private note"
    );
    assert!(holds(&bob, "shared"));
    assert!(holds(&carol, "private") && holds(&carol, "shared"));

    // Bob edits the shared note offline while alice unshares it.
    patch(&bob, "shared", json!({"title": "bob's plan"})).await;
    patch(&alice, "shared", json!({"shared_with": []})).await;
    alice.sync().await;
    bob.sync().await;
    assert!(
        !holds(&bob, "shared"),
        "unsharing removes it from bob's device"
    );
    let letters: Vec<_> = bob.replica().dead_letters().cloned().collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].code, "forbidden");
    assert_eq!(bob.replica().outbox_depth(), 0);

    let stored = carol.replica().meta().clone();
    assert!(
        !stored.view.is_empty(),
        "the device keeps the view fingerprint"
    );
    s.shutdown().await;
}

on_both_backends!(devices_hold_only_what_their_users_may_read,);
