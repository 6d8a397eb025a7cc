//! Scenario tests of one or two devices against the in-memory server: coalescing, each
//! conflict policy, the inbox, dead letters, lost responses, storage failures, bad input and
//! cursor expiry. Each asserts what a user of the engine would see.

use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::{Policy, State};
use ferry_core::ports::{Clock, NoAuth, RequestMeta, StoreError, Transport, TransportError};
use ferry_core::protocol::{Fields, OpKind, PullResponse, PushRequest, PushResponse};
use ferry_core::replica::{Change, Choice, Event, Outcome, ReplicaConfig};
use ferry_core::server::{MemoryServer, PullError};
use ferry_core::sim::SimRules;
use ferry_core::ErrorCode;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[derive(Clone, Default)]
struct Server {
    inner: Rc<RefCell<MemoryServer>>,
    drop_next_response: Rc<Cell<bool>>,
    offline: Rc<Cell<bool>>,
}

impl Transport for Server {
    async fn push(
        &self,
        req: &PushRequest,
        _: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        if self.offline.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let resp = self
            .inner
            .borrow_mut()
            .push("t", req, &SimRules)
            .expect("valid push");
        if self.drop_next_response.replace(false) {
            return Err(TransportError::Timeout);
        }
        Ok(resp)
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        _: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        if self.offline.get() {
            return Err(TransportError::Network("offline".into()));
        }
        self.inner
            .borrow()
            .pull("t", cursor, limit)
            .map_err(|PullError::CursorExpired { .. }| TransportError::CursorExpired)
    }
}

type Dev = Engine<MemoryStore, Server, NoAuth, ManualClock, SeededEntropy>;

struct Device {
    engine: Dev,
    store: MemoryStore,
    clock: ManualClock,
}

fn config() -> ReplicaConfig {
    ReplicaConfig::new([
        ("notes".to_string(), Policy::MergeFields),
        ("tasks".to_string(), Policy::LastWriterWins),
        ("expenses".to_string(), Policy::ServerWinsReview),
    ])
}

fn device(server: &Server, seed: u64) -> Device {
    let store = MemoryStore::new();
    let clock = ManualClock::new(1_000_000 + seed);
    let engine = block_on(Engine::open(
        store.clone(),
        server.clone(),
        NoAuth,
        clock.clone(),
        SeededEntropy::new(seed),
        config(),
    ))
    .unwrap();
    Device {
        engine,
        store,
        clock,
    }
}

fn obj(v: Value) -> Fields {
    v.as_object().cloned().unwrap()
}

impl Device {
    fn write(&self, collection: &str, id: &str, change: Change) {
        self.clock.advance(10);
        let (_, ticket) = self.engine.write(collection, id, change).unwrap();
        block_on(self.engine.flush(ticket)).unwrap();
    }

    fn put(&self, collection: &str, id: &str, v: Value) {
        self.write(collection, id, Change::Put(obj(v)));
    }

    fn patch(&self, collection: &str, id: &str, v: Value) {
        self.write(collection, id, Change::Patch(obj(v)));
    }

    fn sync(&self) -> CycleOutcome {
        self.clock.advance(10);
        block_on(self.engine.sync())
    }

    fn view(&self, collection: &str, id: &str) -> Value {
        let r = self.engine.replica();
        let rec = r.record(collection, id).expect("record exists");
        if rec.state.deleted {
            Value::Null
        } else {
            Value::Object(rec.state.fields.clone())
        }
    }
}

#[test]
fn offline_edits_coalesce_into_one_mutation() {
    let server = Server::default();
    let a = device(&server, 1);
    a.put("notes", "n1", json!({"title": "draft"}));
    a.patch("notes", "n1", json!({"body": "first"}));
    a.patch("notes", "n1", json!({"title": "final"}));
    let outbox: Vec<_> = a.engine.replica().outbox().cloned().collect();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].op, OpKind::Create);
    assert_eq!(
        Value::Object(outbox[0].patch.clone()),
        json!({"title": "final", "body": "first"})
    );
    assert_eq!(outbox[0].writes, 3);
    a.put("notes", "n2", json!({"title": "oops"}));
    a.write("notes", "n2", Change::Delete);
    assert_eq!(
        a.engine.replica().outbox_depth(),
        1,
        "a create deleted before sending leaves nothing to send"
    );
    assert_eq!(a.sync(), CycleOutcome::Synced);
    let s = server.inner.borrow();
    let t = s.tenant("t").unwrap();
    assert_eq!(t.applied().len(), 1);
    assert!(t.record("notes", "n2").is_none());
}

#[test]
fn merge_fields_combines_edits_of_different_fields_and_text() {
    let server = Server::default();
    let (a, b) = (device(&server, 1), device(&server, 2));
    a.put(
        "notes",
        "n",
        json!({"title": "Site visit", "body": "Check the pump. Call Anna."}),
    );
    a.sync();
    b.sync();
    a.patch("notes", "n", json!({"title": "Site visit Tuesday"}));
    b.patch(
        "notes",
        "n",
        json!({"body": "Check the pump. Call Anna and Ben.", "tag": "ops"}),
    );
    a.sync();
    b.sync();
    a.sync();
    let expected = json!({"title": "Site visit Tuesday", "body": "Check the pump. Call Anna and Ben.", "tag": "ops"});
    assert_eq!(a.view("notes", "n"), expected);
    assert_eq!(b.view("notes", "n"), expected);
    let events = b.engine.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Settled {
                outcome: Outcome::Merged,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn overlapping_text_edits_go_to_the_inbox_with_both_sides() {
    let server = Server::default();
    let (a, b) = (device(&server, 1), device(&server, 2));
    a.put("notes", "n", json!({"body": "the red car"}));
    a.sync();
    b.sync();
    a.patch("notes", "n", json!({"body": "the blue car"}));
    b.patch("notes", "n", json!({"body": "the green car"}));
    a.sync();
    b.sync();
    let conflicts: Vec<_> = b.engine.replica().conflicts().cloned().collect();
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.fields, vec!["body".to_string()]);
    assert_eq!(c.local.fields["body"], json!("the green car"));
    assert_eq!(c.server.fields["body"], json!("the blue car"));
    assert_eq!(
        c.base.as_ref().unwrap().fields["body"],
        json!("the red car")
    );
    assert_eq!(
        b.view("notes", "n"),
        json!({"body": "the blue car"}),
        "the record shows the server until resolved"
    );
    let merged = State::live(obj(json!({"body": "the teal car"})));
    b.engine
        .replica_mut()
        .resolve_conflict(&c.conflict_id, Choice::Merged(merged), b.clock.now_ms())
        .unwrap();
    b.sync();
    a.sync();
    assert_eq!(a.view("notes", "n"), json!({"body": "the teal car"}));
    assert_eq!(b.engine.replica().conflicts().count(), 0);
}

#[test]
fn last_writer_wins_by_clock_on_every_device() {
    let server = Server::default();
    let (a, b) = (device(&server, 1), device(&server, 2));
    a.put("tasks", "t", json!({"title": "pump", "done": false}));
    a.sync();
    b.sync();
    b.patch("tasks", "t", json!({"done": true}));
    a.clock.advance(1_000);
    a.patch(
        "tasks",
        "t",
        json!({"done": false, "title": "pump (later)"}),
    );
    b.sync();
    a.sync();
    b.sync();
    assert_eq!(
        a.view("tasks", "t"),
        json!({"title": "pump (later)", "done": false})
    );
    assert_eq!(b.view("tasks", "t"), a.view("tasks", "t"));
}

#[test]
fn server_wins_review_keeps_the_server_and_asks_a_person() {
    let server = Server::default();
    let (a, b) = (device(&server, 1), device(&server, 2));
    a.put("expenses", "e", json!({"amount": 10}));
    a.sync();
    b.sync();
    a.patch("expenses", "e", json!({"amount": 12}));
    b.patch("expenses", "e", json!({"amount": 15}));
    a.sync();
    b.sync();
    assert_eq!(b.view("expenses", "e"), json!({"amount": 12}));
    let id = b
        .engine
        .replica()
        .conflicts()
        .next()
        .unwrap()
        .conflict_id
        .clone();
    b.engine
        .replica_mut()
        .resolve_conflict(&id, Choice::Local, b.clock.now_ms())
        .unwrap();
    b.sync();
    a.sync();
    assert_eq!(a.view("expenses", "e"), json!({"amount": 15}));
}

#[test]
fn a_refused_write_becomes_a_dead_letter_that_can_be_fixed_or_discarded() {
    let server = Server::default();
    let a = device(&server, 1);
    a.put("expenses", "e1", json!({"amount": -5, "note": "taxi"}));
    a.put("expenses", "e2", json!({"amount": -7}));
    a.put("expenses", "ok", json!({"amount": 3}));
    assert_eq!(a.sync(), CycleOutcome::Synced);
    let letters: Vec<_> = a.engine.replica().dead_letters().cloned().collect();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].code, "validation_failed");
    assert_eq!(letters[0].desired.fields["note"], json!("taxi"));
    assert!(
        a.engine
            .replica()
            .record("expenses", "e1")
            .unwrap()
            .state
            .deleted,
        "the refused create is not shown as stored"
    );
    let fixed = State::live(obj(json!({"amount": 5, "note": "taxi"})));
    a.engine
        .replica_mut()
        .retry_dead_letter(&letters[0].letter_id, Some(fixed), a.clock.now_ms())
        .unwrap();
    a.engine
        .replica_mut()
        .discard_dead_letter(&letters[1].letter_id)
        .unwrap();
    block_on(a.engine.flush(a.engine.ticket())).unwrap();
    a.sync();
    assert_eq!(
        a.view("expenses", "e1"),
        json!({"amount": 5, "note": "taxi"})
    );
    assert_eq!(a.engine.replica().dead_letters().count(), 0);
    let s = server.inner.borrow();
    assert_eq!(
        s.tenant("t")
            .unwrap()
            .record("expenses", "e1")
            .unwrap()
            .fields["amount"],
        json!(5)
    );
    assert!(s.tenant("t").unwrap().record("expenses", "e2").is_none());
}

#[test]
fn a_lost_response_is_retried_and_applied_exactly_once() {
    let server = Server::default();
    let a = device(&server, 1);
    a.put("notes", "n", json!({"title": "x"}));
    server.drop_next_response.set(true);
    assert!(matches!(a.sync(), CycleOutcome::Failed(_)));
    let frozen = a.engine.replica().outbox().next().unwrap().clone();
    assert!(frozen.sent.is_some());
    // A crash now: the frozen entry is durable and comes back identical.
    let b = Device {
        engine: block_on(Engine::open(
            a.store.clone(),
            server.clone(),
            NoAuth,
            a.clock.clone(),
            SeededEntropy::new(9),
            config(),
        ))
        .unwrap(),
        store: a.store.clone(),
        clock: a.clock.clone(),
    };
    assert_eq!(b.engine.replica().outbox().next().unwrap(), &frozen);
    assert_eq!(b.sync(), CycleOutcome::Synced);
    assert_eq!(
        server.inner.borrow().tenant("t").unwrap().applied().len(),
        1
    );
    assert_eq!(b.engine.replica().outbox_depth(), 0);
    assert_eq!(
        b.engine.replica().record("notes", "n").unwrap().version(),
        1
    );
}

#[test]
fn a_failed_commit_rolls_back_and_keeps_what_was_stored() {
    let server = Server::default();
    let a = device(&server, 1);
    a.put("notes", "kept", json!({"title": "safe"}));
    a.store
        .fail_next_commit(StoreError::QuotaExceeded("disk full".into()));
    let (_, ticket) = a
        .engine
        .write("notes", "lost", Change::Put(obj(json!({"title": "big"}))))
        .unwrap();
    assert!(
        a.engine.replica().record("notes", "lost").is_some(),
        "visible before durable"
    );
    let err = block_on(a.engine.flush(ticket)).unwrap_err();
    assert_eq!(err.code, ErrorCode::QuotaExceeded);
    assert!(
        a.engine.replica().record("notes", "lost").is_none(),
        "rolled back"
    );
    assert_eq!(a.engine.replica().outbox_depth(), 1);
    assert_eq!(a.store.snapshot().outbox.len(), 1);
    assert_eq!(a.view("notes", "kept"), json!({"title": "safe"}));
}

#[test]
fn bad_input_is_refused_with_a_code_and_changes_nothing() {
    let server = Server::default();
    let a = device(&server, 1);
    a.put("notes", "n", json!({"title": "t"}));
    let before = a.store.snapshot();
    let try_write =
        |c: &str, id: &str, change: Change| a.engine.write(c, id, change).unwrap_err().code;
    assert_eq!(
        try_write("nope", "x", Change::Put(Fields::new())),
        ErrorCode::UnknownCollection
    );
    assert_eq!(
        try_write("notes", "", Change::Put(Fields::new())),
        ErrorCode::InvalidId
    );
    assert_eq!(
        try_write("notes", "has space", Change::Put(Fields::new())),
        ErrorCode::InvalidId
    );
    assert_eq!(
        try_write("notes", "missing", Change::Patch(obj(json!({"a": 1})))),
        ErrorCode::NotFound
    );
    assert_eq!(
        try_write("notes", "missing", Change::Delete),
        ErrorCode::NotFound
    );
    let huge = obj(json!({"body": "x".repeat(300 * 1024)}));
    assert_eq!(
        try_write("notes", "n", Change::Put(huge)),
        ErrorCode::InvalidRecord
    );
    block_on(a.engine.flush(a.engine.ticket())).unwrap();
    assert_eq!(a.store.snapshot(), before);
}

#[test]
fn an_expired_cursor_resyncs_and_drops_what_the_server_compacted() {
    let server = Server::default();
    let (a, b) = (device(&server, 1), device(&server, 2));
    a.put("notes", "keep", json!({"t": 1}));
    a.put("notes", "gone", json!({"t": 2}));
    a.sync();
    b.sync();
    b.engine.network_down();
    a.write("notes", "gone", Change::Delete);
    a.put("notes", "new", json!({"t": 3}));
    a.sync();
    let cursor = server.inner.borrow().tenant("t").unwrap().cursor();
    server.inner.borrow_mut().tenant_mut("t").compact(cursor);
    b.engine.network_up();
    assert_eq!(b.sync(), CycleOutcome::Synced);
    let r = b.engine.replica();
    assert!(r.record("notes", "gone").is_none(), "compacted away");
    assert!(r.record("notes", "keep").is_some() && r.record("notes", "new").is_some());
    assert!(!r.meta().resyncing);
}

#[test]
fn offline_then_online_resumes_with_backoff_state() {
    let server = Server::default();
    let a = device(&server, 1);
    server.offline.set(true);
    a.put("notes", "n", json!({"title": "x"}));
    assert!(matches!(a.sync(), CycleOutcome::Failed(_)));
    let s = a.engine.sync_state();
    assert!(!s.online);
    assert!(s.next_retry_at_ms.is_some());
    server.offline.set(false);
    a.engine.network_up();
    assert!(a.engine.is_due(), "the network coming back retries at once");
    assert_eq!(a.sync(), CycleOutcome::Synced);
    assert_eq!(a.engine.replica().outbox_depth(), 0);
    let m = a.engine.metrics();
    assert_eq!((m.cycles_ok, m.cycles_failed), (1, 1));
}

#[test]
fn the_loopback_transport_connects_engines_to_an_in_memory_server() {
    use ferry_core::memory::LoopbackTransport;
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let open = |seed| {
        let transport = LoopbackTransport::new(server.clone(), "tenant");
        let clock = ManualClock::new(5_000);
        block_on(Engine::open(
            MemoryStore::new(),
            transport,
            NoAuth,
            clock,
            SeededEntropy::new(seed),
            config(),
        ))
        .unwrap()
    };
    let (a, b) = (open(1), open(2));
    let (_, t) = a
        .write("tasks", "t1", Change::Put(obj(json!({"title": "call"}))))
        .unwrap();
    block_on(a.flush(t)).unwrap();
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    assert_eq!(
        b.replica().record("tasks", "t1").unwrap().state.fields["title"],
        json!("call")
    );
}

#[test]
fn a_replica_loaded_from_its_store_has_nothing_unsaved() {
    use ferry_core::replica::Replica;
    let server = Server::default();
    server.offline.set(true);
    let a = device(&server, 1);
    a.put("notes", "n1", json!({"title": "queued"}));
    a.put("notes", "n2", json!({"title": "queued too"}));
    let stored = a.store.snapshot();
    assert_eq!(stored.outbox.len(), 2);
    let reloaded = Replica::open(stored, config(), || {
        unreachable!("the store has an identity")
    });
    assert_eq!(reloaded.outbox_depth(), 2);
    assert!(
        !reloaded.has_unsaved_changes(),
        "a reload must not look like pending local changes"
    );
}

#[test]
fn a_reopened_replica_stamps_after_everything_it_stored_though_writes_do_not_save_the_clock() {
    let server = Server::default();
    let a = device(&server, 1);
    a.put("notes", "n1", json!({"title": "first"}));
    let meta_before = a
        .store
        .snapshot()
        .meta
        .expect("a fresh replica saves its meta");
    // Same millisecond: each write only moves the counter.
    a.put("notes", "n2", json!({"title": "second"}));
    a.put("notes", "n1", json!({"title": "third"}));
    let stored = a.store.snapshot();
    assert_eq!(
        stored.meta.as_ref().map(|m| m.hlc.clone()),
        Some(meta_before.hlc.clone()),
        "local writes commit their record and outbox entry without the meta row"
    );
    let latest_stored = stored.records.iter().map(|r| r.hlc.clone()).max().unwrap();
    assert!(latest_stored > meta_before.hlc);

    // Reopen from the store with the wall clock set back: the clock must not go back.
    a.clock.set(1);
    let reopened = block_on(Engine::open(
        a.store.clone(),
        server.clone(),
        NoAuth,
        a.clock.clone(),
        SeededEntropy::new(2),
        config(),
    ))
    .unwrap();
    let (_, ticket) = reopened
        .write("notes", "n3", Change::Put(obj(json!({"title": "after"}))))
        .unwrap();
    block_on(reopened.flush(ticket)).unwrap();
    let replica = reopened.replica();
    let new_stamp = replica.record("notes", "n3").unwrap().hlc.clone();
    assert!(
        new_stamp > latest_stored,
        "{new_stamp:?} must order after {latest_stored:?}"
    );
    let ids: Vec<&str> = replica.outbox().map(|e| e.entry_id.as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "entry ids stay unique: {ids:?}");
}
