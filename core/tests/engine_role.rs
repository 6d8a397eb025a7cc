//! The engine's one `Role` and its replica swaps: coalescing and the store's base ownership
//! follow the role, and a reload (another writer committed) takes the role in the same step
//! and never throws away a batch it did not store.

use ferry_core::engine::{block_on, Engine, Role};
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

/// A memory store that records the role it was told and can hold loads at a gate.
#[derive(Clone, Default)]
struct WatchedStore {
    inner: MemoryStore,
    role: Rc<Cell<Option<Role>>>,
    loads_open: Rc<Cell<bool>>,
    /// How many times everything was read.
    full_loads: Rc<Cell<u32>>,
}

impl Store for WatchedStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        std::future::poll_fn(|_| match self.loads_open.get() {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await;
        self.full_loads.set(self.full_loads.get() + 1);
        self.inner.load().await
    }

    async fn load_part(
        &self,
        keys: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<StoredState, StoreError> {
        self.inner.load_part(keys).await
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.inner.commit(batch).await
    }

    fn set_role(&self, role: Role) {
        self.role.set(Some(role));
    }
}

type TestEngine = Engine<WatchedStore, LoopbackTransport, NoAuth, ManualClock, SeededEntropy>;

fn engine(store: &WatchedStore, leader: bool, seed: u64) -> TestEngine {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let mut config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    config.coalesce = leader;
    // Writers sharing a store name their outbox entries apart (as tabs do).
    config.instance = format!("-w{seed}");
    block_on(Engine::open(
        store.clone(),
        LoopbackTransport::new(server, "t"),
        NoAuth,
        ManualClock::new(1),
        SeededEntropy::new(seed),
        config,
    ))
    .unwrap()
}

fn put(engine: &TestEngine, id: &str, title: &str) {
    let fields = serde_json::json!({ "title": title })
        .as_object()
        .cloned()
        .unwrap();
    let (_, ticket) = engine.write("notes", id, Change::Put(fields)).unwrap();
    block_on(engine.flush(ticket)).unwrap();
}

fn watched() -> WatchedStore {
    let store = WatchedStore::default();
    store.loads_open.set(true);
    store
}

#[test]
fn coalescing_and_base_ownership_follow_the_role() {
    let store = watched();
    let e = engine(&store, false, 1);
    assert_eq!(e.role(), Role::Follower);
    assert_eq!(store.role.get(), Some(Role::Follower), "told at open");
    put(&e, "n", "a");
    put(&e, "n", "b");
    assert_eq!(e.replica().outbox_depth(), 2, "a follower appends");

    e.set_role(Role::Leader);
    assert_eq!(store.role.get(), Some(Role::Leader));
    put(&e, "n", "c");
    assert_eq!(
        e.replica().outbox_depth(),
        1,
        "the leader folds them into one"
    );

    e.set_role(Role::Follower);
    assert_eq!(store.role.get(), Some(Role::Follower));
}

#[test]
fn a_reload_takes_the_role_with_what_another_writer_stored() {
    let store = watched();
    let follower = engine(&store, false, 1);
    let other = engine(&store, false, 2);
    put(&other, "from-other", "x");
    put(&follower, "n", "a");
    assert!(follower.replica().record("notes", "from-other").is_none());

    assert!(block_on(follower.reload(Role::Leader)).unwrap());
    assert_eq!(follower.role(), Role::Leader);
    assert_eq!(store.role.get(), Some(Role::Leader));
    assert!(follower.replica().record("notes", "from-other").is_some());
    put(&follower, "n", "b");
    assert_eq!(
        follower.replica().outbox_depth(),
        2,
        "the reloaded replica coalesces: its own two edits of n are one entry, plus the other writer's"
    );
}

#[test]
fn a_reload_gives_way_to_unsaved_writes_and_to_a_commit_taken_meanwhile() {
    let store = watched();
    let e = engine(&store, true, 1);
    let fields = serde_json::json!({"title": "unsaved"})
        .as_object()
        .cloned()
        .unwrap();
    let (_, ticket) = e.write("notes", "n", Change::Put(fields)).unwrap();
    assert!(!block_on(e.reload(Role::Leader)).unwrap(), "unsaved writes");
    block_on(e.flush(ticket)).unwrap();

    // The reload reads; meanwhile a write is flushed: its batch waits behind the reload,
    // and the reload must not swap in a replica that lacks it.
    store.loads_open.set(false);
    let mut cx = Context::from_waker(Waker::noop());
    let mut reload = pin!(e.reload(Role::Leader));
    assert!(reload.as_mut().poll(&mut cx).is_pending());
    let fields = serde_json::json!({"title": "during"})
        .as_object()
        .cloned()
        .unwrap();
    let (_, ticket) = e.write("notes", "m", Change::Put(fields)).unwrap();
    let mut flush = pin!(e.flush(ticket));
    assert!(
        flush.as_mut().poll(&mut cx).is_pending(),
        "waits for the reload"
    );
    assert!(e.is_committing());
    store.loads_open.set(true);
    assert!(matches!(
        reload.as_mut().poll(&mut cx),
        Poll::Ready(Ok(false))
    ));
    assert!(matches!(flush.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(
        e.replica().record("notes", "m").unwrap().state.fields["title"],
        "during"
    );
    assert!(store.inner.snapshot().records.iter().any(|r| r.id == "m"));
}

#[test]
fn a_refresh_takes_in_the_named_records_of_another_writers_commit() {
    let store = watched();
    let follower = engine(&store, false, 1);
    let leader = engine(&store, true, 2);
    put(&leader, "a", "first");
    put(&leader, "b", "first");
    follower.take_committed();
    let told = leader.take_committed();
    assert!(block_on(follower.refresh(Role::Follower, &told)).unwrap());
    assert_eq!(
        follower.replica().record("notes", "a").unwrap().state,
        leader.replica().record("notes", "a").unwrap().state
    );
    assert_eq!(
        follower.replica().outbox_depth(),
        2,
        "the leader's entries are taken in"
    );

    put(&leader, "a", "second");
    let told = leader.take_committed();
    assert_eq!(
        told,
        ferry_core::engine::Committed::Keys([("notes".to_string(), "a".to_string())].into()),
        "a commit names the records it wrote, no more"
    );
    assert!(block_on(follower.refresh(Role::Follower, &told)).unwrap());
    let shown = follower
        .replica()
        .record("notes", "a")
        .unwrap()
        .state
        .clone();
    assert_eq!(
        Some(&shown),
        leader.replica().record("notes", "a").map(|r| &r.state)
    );
    assert!(!follower.replica().has_unsaved_changes());
}

#[test]
fn a_refresh_behind_the_store_reads_the_records_its_outbox_names_instead_of_inventing_them() {
    // In the browser a tab announces a commit only after it finished, so another tab may
    // take in an older notice from a store that already holds a newer commit: its outbox
    // names a record the notice does not. Repairing that record from its entries (as a
    // reopen does for a row truly missing) invented a record, left the follower with unsaved
    // changes, and so busy for good: it never took in another notice.
    let store = watched();
    let follower = engine(&store, false, 1);
    let leader = engine(&store, true, 2);
    put(&leader, "a", "first");
    let first = leader.take_committed();
    put(&leader, "unannounced", "written after the notice");
    let full_loads = store.full_loads.get();
    assert!(block_on(follower.refresh(Role::Follower, &first)).unwrap());
    assert_eq!(
        store.full_loads.get(),
        full_loads,
        "only the named records are read, not everything"
    );
    let replica = follower.replica();
    assert!(
        !replica.has_unsaved_changes(),
        "the follower is not left busy"
    );
    assert_eq!(
        replica
            .record("notes", "unannounced")
            .map(|r| r.state.clone()),
        leader
            .replica()
            .record("notes", "unannounced")
            .map(|r| r.state.clone()),
        "the record is what the store holds, not one rebuilt from its entries"
    );
    assert_eq!(replica.outbox_depth(), 2);
}
