//! `Replica::take_changed_collections`: which collections a UI must recompute after local
//! writes, pulls, acks, settles and inbox actions — and nothing else.

use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{LoopbackTransport, ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::{Policy, State};
use ferry_core::ports::NoAuth;
use ferry_core::protocol::Fields;
use ferry_core::replica::{Change, Choice, ReplicaConfig};
use ferry_core::server::MemoryServer;
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

type Dev = Engine<MemoryStore, LoopbackTransport, NoAuth, ManualClock, SeededEntropy>;

fn config() -> ReplicaConfig {
    ReplicaConfig::new([
        ("notes".to_string(), Policy::MergeFields),
        ("tasks".to_string(), Policy::LastWriterWins),
        ("expenses".to_string(), Policy::ServerWinsReview),
    ])
}

fn obj(v: serde_json::Value) -> Fields {
    v.as_object().cloned().unwrap()
}

fn device(server: &Rc<RefCell<MemoryServer>>, seed: u64) -> (Dev, MemoryStore) {
    let store = MemoryStore::new();
    let engine = block_on(Engine::open(
        store.clone(),
        LoopbackTransport::new(server.clone(), "tenant"),
        NoAuth,
        ManualClock::new(1_000 + seed),
        SeededEntropy::new(seed),
        config(),
    ))
    .unwrap();
    (engine, store)
}

fn put(d: &Dev, collection: &str, id: &str, v: serde_json::Value) {
    let (_, t) = d.write(collection, id, Change::Put(obj(v))).unwrap();
    block_on(d.flush(t)).unwrap();
}

fn changed(d: &Dev) -> BTreeSet<String> {
    d.replica_mut().take_changed_collections()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_fresh_replica_reports_every_collection_once() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let (a, _) = device(&server, 1);
    assert_eq!(changed(&a), set(&["expenses", "notes", "tasks"]));
    assert_eq!(changed(&a), set(&[]), "drained");
}

#[test]
fn local_writes_report_their_collection_only() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let (a, _) = device(&server, 1);
    changed(&a);
    put(&a, "notes", "n1", json!({"title": "x"}));
    assert_eq!(changed(&a), set(&["notes"]));
    // A refused write changes nothing.
    assert!(a
        .write("notes", "missing", Change::Patch(obj(json!({"t": 1}))))
        .is_err());
    assert_eq!(a.replica().changed_collections(), &set(&[]));
}

#[test]
fn pulls_and_acks_report_the_collections_they_touched() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let (a, _) = device(&server, 1);
    let (b, _) = device(&server, 2);
    put(&a, "tasks", "t1", json!({"title": "call"}));
    changed(&a);
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    // The ack moved the base of a tasks record (the view stays; the UI may skip nothing).
    assert_eq!(changed(&a), set(&["tasks"]));

    changed(&b);
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    assert_eq!(
        changed(&b),
        set(&["tasks"]),
        "the pulled record's collection"
    );
    // A cycle that pulls nothing new reports nothing.
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    assert_eq!(changed(&b), set(&[]));
}

#[test]
fn settles_and_inbox_actions_report_their_collection() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let (a, _) = device(&server, 1);
    let (b, _) = device(&server, 2);
    put(&a, "expenses", "e1", json!({"amount": 1}));
    block_on(a.sync());
    block_on(b.sync());
    put(&a, "expenses", "e1", json!({"amount": 2}));
    put(&b, "expenses", "e1", json!({"amount": 3}));
    block_on(a.sync());
    changed(&b);
    block_on(b.sync());
    // server-wins-review: b's edit went to the inbox and the view shows the server's state.
    assert_eq!(changed(&b), set(&["expenses"]));
    let conflict = b.replica().conflicts().next().unwrap().conflict_id.clone();
    b.replica_mut()
        .resolve_conflict(
            &conflict,
            Choice::Merged(State::live(obj(json!({"amount": 5})))),
            9_000,
        )
        .unwrap();
    assert_eq!(changed(&b), set(&["expenses"]));
}

#[test]
fn a_failed_commit_reloads_and_reports_everything() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let (a, store) = device(&server, 1);
    changed(&a);
    store.fail_next_commit(ferry_core::ports::StoreError::QuotaExceeded("full".into()));
    let (_, t) = a
        .write("notes", "n1", Change::Put(obj(json!({"t": 1}))))
        .unwrap();
    assert!(block_on(a.flush(t)).is_err());
    // The replica was reloaded from the store: every view must be recomputed.
    assert_eq!(changed(&a), set(&["expenses", "notes", "tasks"]));
    assert!(a.replica().record("notes", "n1").is_none());
}

#[test]
fn changes_list_the_changed_records_one_by_one() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let (a, _) = device(&server, 1);
    let (b, _) = device(&server, 2);
    let opened = a.take_changes();
    assert!(
        opened.touches("notes") && opened.ids("notes").is_none(),
        "opened: whole"
    );
    assert!(a.take_changes().is_empty(), "drained");
    put(&a, "notes", "n1", json!({"title": "x"}));
    put(&a, "notes", "n2", json!({"title": "y"}));
    let local = a.take_changes();
    assert_eq!(local.ids("notes"), Some(&set(&["n1", "n2"])));
    assert!(!local.touches("tasks"));
    // Pulled records are listed too.
    b.take_changes();
    put(&b, "tasks", "t1", json!({"done": false}));
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    b.take_changes();
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    let pulled = a.take_changes();
    assert_eq!(pulled.ids("tasks"), Some(&set(&["t1"])));
    // Taking the collections drains the records too, and the other way round.
    put(&a, "notes", "n3", json!({}));
    changed(&a);
    assert!(a.take_changes().is_empty());
}
