//! A flush must not report writes durable while an earlier commit that carries them is still
//! running (a sync cycle took them into its own transaction).

use ferry_core::engine::Engine;
use ferry_core::memory::{LoopbackTransport, ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, Store, StoreError};
use ferry_core::replica::{Change, ReplicaConfig, StoredState, WriteBatch};
use ferry_core::server::MemoryServer;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A store whose commits wait until the test opens the gate.
#[derive(Clone)]
struct GatedStore {
    inner: MemoryStore,
    open: Rc<Cell<bool>>,
}

impl Store for GatedStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        self.inner.load().await
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        std::future::poll_fn(|_| {
            if self.open.get() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        self.inner.commit(batch).await
    }
}

type GatedEngine = Engine<GatedStore, LoopbackTransport, NoAuth, ManualClock, SeededEntropy>;

/// An engine over a gated store (open) and an in-memory server.
fn gated_engine() -> (GatedStore, GatedEngine) {
    let store = GatedStore {
        inner: MemoryStore::new(),
        open: Rc::new(Cell::new(true)),
    };
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let transport = LoopbackTransport::new(server, "t");
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    let engine = ferry_core::engine::block_on(Engine::open(
        store.clone(),
        transport,
        NoAuth,
        ManualClock::new(1),
        SeededEntropy::new(1),
        config,
    ))
    .unwrap();
    (store, engine)
}

#[test]
fn flush_waits_for_a_commit_already_carrying_its_writes() {
    let (store, engine) = gated_engine();
    let fields = serde_json::json!({"title": "x"})
        .as_object()
        .cloned()
        .unwrap();
    let (_, ticket) = engine.write("notes", "n", Change::Put(fields)).unwrap();
    store.open.set(false);
    let mut cx = Context::from_waker(Waker::noop());
    // The sync cycle's first commit takes the write and waits in the store.
    let mut sync = pin!(engine.sync());
    assert!(sync.as_mut().poll(&mut cx).is_pending());
    assert!(
        !engine.replica().has_unsaved_changes(),
        "the cycle took the write"
    );
    let mut flush = pin!(engine.flush(ticket));
    assert!(flush.as_mut().poll(&mut cx).is_pending(), "not durable yet");
    assert_eq!(store.inner.snapshot().outbox.len(), 0);
    store.open.set(true);
    assert!(sync.as_mut().poll(&mut cx).is_ready());
    assert!(matches!(flush.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(store.inner.snapshot().records.len(), 1);
}

#[test]
fn a_batch_taken_before_an_earlier_commit_failed_is_not_stored() {
    let (store, engine) = gated_engine();
    let fields = |t: &str| {
        serde_json::json!({ "title": t })
            .as_object()
            .cloned()
            .unwrap()
    };
    let mut cx = Context::from_waker(Waker::noop());
    store.open.set(false);
    let (_, first) = engine
        .write("notes", "a", Change::Put(fields("refused")))
        .unwrap();
    let mut flush_a = pin!(engine.flush(first));
    assert!(
        flush_a.as_mut().poll(&mut cx).is_pending(),
        "waits in the store"
    );
    // While that commit waits, a second batch is taken from the same replica: it freezes
    // the refused write's outbox entry for a push (as a sync cycle does).
    let frozen = engine.replica_mut().begin_push();
    assert!(frozen.is_some());
    let (_, second) = engine
        .write("notes", "b", Change::Put(fields("later")))
        .unwrap();
    let mut flush_b = pin!(engine.flush(second));
    assert!(flush_b.as_mut().poll(&mut cx).is_pending());

    store
        .inner
        .fail_next_commit(StoreError::QuotaExceeded("disk full".into()));
    store.open.set(true);
    assert!(matches!(
        flush_a.as_mut().poll(&mut cx),
        Poll::Ready(Err(_))
    ));
    assert!(
        matches!(flush_b.as_mut().poll(&mut cx), Poll::Ready(Err(_))),
        "the later batch came from the replica the reload threw away"
    );
    let stored = store.inner.snapshot();
    assert!(
        stored.outbox.is_empty(),
        "no half of the refused change is stored"
    );
    assert!(stored.records.is_empty());
    assert_eq!(engine.replica().outbox_depth(), 0);
    assert!(engine.replica().record("notes", "a").is_none());

    // The engine works on afterwards.
    let (_, third) = engine
        .write("notes", "c", Change::Put(fields("ok")))
        .unwrap();
    ferry_core::engine::block_on(engine.flush(third)).unwrap();
    assert_eq!(store.inner.snapshot().records.len(), 1);
}
