//! Stored data that contradicts itself: the outbox holds a change to a record whose row is
//! gone from the store. The replica reports it (the `corrupt-data` outcome and
//! `SyncState::last_corrupt_data`), keeps the change, and recovers the record by resyncing
//! from the server, so the change goes out rebased on the server's state.

use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{LoopbackTransport, ManualClock, MemoryStore, SeededEntropy};
use ferry_core::outcomes::OutcomeEvent;
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, Store};
use ferry_core::replica::{Change, ReplicaConfig, WriteBatch};
use ferry_core::server::MemoryServer;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;

type Dev = Engine<MemoryStore, LoopbackTransport, NoAuth, ManualClock, SeededEntropy>;

fn device(server: &Rc<RefCell<MemoryServer>>, store: &MemoryStore, seed: u64) -> Dev {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    block_on(Engine::open(
        store.clone(),
        LoopbackTransport::new(server.clone(), "t"),
        NoAuth,
        ManualClock::new(1_700_000_000_000 + seed),
        SeededEntropy::new(seed),
        config,
    ))
    .unwrap()
}

fn write(engine: &Dev, id: &str, change: Change) {
    let (_, ticket) = engine.write("notes", id, change).unwrap();
    block_on(engine.flush(ticket)).unwrap();
}

fn fields(value: serde_json::Value) -> ferry_core::protocol::Fields {
    value.as_object().cloned().unwrap()
}

#[test]
fn a_missing_record_row_is_reported_as_corrupt_data_and_resynced_with_the_change_kept() {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let other = device(&server, &MemoryStore::new(), 1);
    write(
        &other,
        "r1",
        Change::Put(fields(json!({"title": "from the server"}))),
    );
    assert_eq!(block_on(other.sync()), CycleOutcome::Synced);

    let store = MemoryStore::new();
    let engine = device(&server, &store, 2);
    assert_eq!(block_on(engine.sync()), CycleOutcome::Synced);
    // An edit waits in the outbox (not sent yet).
    write(
        &engine,
        "r1",
        Change::Patch(fields(json!({"body": "edited here"}))),
    );
    let entry = engine.replica().outbox().next().unwrap().entry_id.clone();
    drop(engine);

    // The record's row disappears from storage; its outbox entry stays.
    let mut corrupt = WriteBatch::default();
    corrupt
        .records
        .insert(("notes".to_string(), "r1".to_string()), None);
    block_on(store.commit(&corrupt)).unwrap();

    let engine = device(&server, &store, 2);
    let reported: Vec<OutcomeEvent> = engine
        .drain_outcomes()
        .into_iter()
        .filter(|o| o.kind() == "corrupt-data")
        .collect();
    assert!(
        matches!(reported.as_slice(), [OutcomeEvent::CorruptData { collection, record_id, .. }]
            if collection == "notes" && record_id == "r1"),
        "reported once, naming the record: {reported:?}"
    );
    let seen = engine
        .sync_state()
        .last_corrupt_data
        .expect("in the sync state");
    assert_eq!(
        (seen.collection.as_str(), seen.record_id.as_str()),
        ("notes", "r1")
    );
    {
        let replica = engine.replica();
        let ids: Vec<&str> = replica.outbox().map(|e| e.entry_id.as_str()).collect();
        assert_eq!(ids, [entry.as_str()], "the outbox entry is kept");
        assert!(
            replica.meta().resyncing && replica.cursor() == 0,
            "a resync is due"
        );
        let shown = replica
            .record("notes", "r1")
            .expect("the change stays visible");
        assert_eq!(shown.state.fields.get("body"), Some(&json!("edited here")));
        assert!(!shown.state.deleted, "an edited record was live");
    }

    // The resync brings the server's state back and the change goes out on top of it.
    assert_eq!(block_on(engine.sync()), CycleOutcome::Synced);
    assert_eq!(engine.replica().outbox_depth(), 0);
    assert_eq!(
        engine.replica().conflicts().count(),
        0,
        "no conflict with itself"
    );
    let server = server.borrow();
    let tenant = server.tenant("t").unwrap();
    let on_server = tenant.record("notes", "r1").unwrap();
    assert_eq!(
        on_server.fields.get("title"),
        Some(&json!("from the server"))
    );
    assert_eq!(on_server.fields.get("body"), Some(&json!("edited here")));
    let local = engine.replica().record("notes", "r1").unwrap().clone();
    assert_eq!(local.version(), on_server.version);
    assert_eq!(local.state.fields, on_server.fields);
}
