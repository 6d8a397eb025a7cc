//! Storage lost under a running replica (`engine/storage_lost.rs`, `engine/undo.rs`): a
//! write that finds the database gone is stored in a database re-created from the replica;
//! when the re-creation fails too, the write is rejected with `storage_lost` and taken back
//! out of memory, and everything written before stays (records and outbox), so a later
//! re-creation stores exactly that. A commit that fails for another reason while the
//! storage is lost (a transaction aborted as the site's data was cleared) is kept by the
//! re-creation, and one whose reload fails too is taken back out of memory. A pull page
//! fetched while the commit of the one before it re-created the storage is asked again
//! from 0 (the re-creation's full resync).

use ferry_core::engine::{block_on, Engine, WriteTicket};
use ferry_core::error::ErrorCode;
use ferry_core::memory::{LoopbackTransport, ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, RequestMeta, Store, StoreError, Transport, TransportError};
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};
use ferry_core::replica::{Change, ReplicaConfig, StoredState, WriteBatch};
use ferry_core::server::MemoryServer;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A memory store whose database can be "deleted" (every use fails with `Lost`) and whose
/// re-creation can be refused.
#[derive(Clone, Default)]
struct LosingStore {
    inner: MemoryStore,
    lost: Rc<Cell<bool>>,
    recreate_fails: Rc<Cell<bool>>,
    recreations: Rc<Cell<u32>>,
    /// Fails the next commit with this error, whatever state the database is in.
    next_commit_fails: Rc<RefCell<Option<StoreError>>>,
    /// Fails the next load with this error.
    next_load_fails: Rc<RefCell<Option<StoreError>>>,
    /// Counts commits down; the database is lost at the one that reaches 0.
    lost_at_commit: Rc<Cell<Option<u32>>>,
}

fn lost() -> StoreError {
    StoreError::Lost("deleted under the running replica".into())
}

impl Store for LosingStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        if let Some(error) = self.next_load_fails.borrow_mut().take() {
            return Err(error);
        }
        match self.lost.get() {
            true => Err(lost()),
            false => self.inner.load().await,
        }
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if let Some(error) = self.next_commit_fails.borrow_mut().take() {
            return Err(error);
        }
        if let Some(left) = self.lost_at_commit.get() {
            self.lost_at_commit.set(left.checked_sub(1));
            if left == 0 {
                // As IndexedDB does, answer later: what runs beside the commit goes first.
                YieldOnce(false).await;
                self.lost.set(true);
            }
        }
        match self.lost.get() {
            true => Err(lost()),
            false => self.inner.commit(batch).await,
        }
    }

    async fn recreate(&self, everything: &WriteBatch) -> Result<(), StoreError> {
        if self.recreate_fails.get() {
            return Err(StoreError::QuotaExceeded("storage refused outright".into()));
        }
        self.inner.wipe();
        self.inner.commit(everything).await?;
        self.lost.set(false);
        self.recreations.set(self.recreations.get() + 1);
        Ok(())
    }
}

type Dev = Engine<LosingStore, LoopbackTransport, NoAuth, ManualClock, SeededEntropy>;

/// A config with the one `notes` collection of these tests.
fn notes_config() -> ReplicaConfig {
    ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)])
}

/// An engine on `store` and `transport`, its randomness seeded with `seed`.
fn open_engine<S: Store, T: Transport>(
    store: S,
    transport: T,
    config: ReplicaConfig,
    seed: u64,
) -> Engine<S, T, NoAuth, ManualClock, SeededEntropy> {
    block_on(Engine::open(
        store,
        transport,
        NoAuth,
        ManualClock::new(1_700_000_000_000),
        SeededEntropy::new(seed),
        config,
    ))
    .unwrap()
}

fn device(store: &LosingStore) -> Dev {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    open_engine(
        store.clone(),
        LoopbackTransport::new(server, "t"),
        notes_config(),
        7,
    )
}

fn write(engine: &Dev, id: &str, change: Change) -> WriteTicket {
    engine.write("notes", id, change).unwrap().1
}

fn fields(value: serde_json::Value) -> ferry_core::protocol::Fields {
    value.as_object().cloned().unwrap()
}

fn title(engine: &Dev, id: &str) -> Option<String> {
    let replica = engine.replica();
    let record = replica.record("notes", id)?;
    Some(record.state.fields.get("title")?.as_str()?.to_owned())
}

/// The outbox as (entry id, record id, patch), for comparing before and after.
fn outbox(engine: &Dev) -> Vec<(String, String, String)> {
    engine
        .replica()
        .outbox()
        .map(|e| {
            (
                e.entry_id.clone(),
                e.record_id.clone(),
                serde_json::to_string(&e.patch).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_write_that_finds_the_storage_lost_is_stored_in_a_database_recreated_from_the_replica() {
    let store = LosingStore::default();
    let engine = device(&store);
    let t = write(&engine, "a", Change::Put(fields(json!({"title": "a1"}))));
    block_on(engine.flush(t)).unwrap();

    store.lost.set(true);
    let t = write(&engine, "b", Change::Put(fields(json!({"title": "b1"}))));
    block_on(engine.flush(t)).unwrap();

    assert_eq!(store.recreations.get(), 1);
    let stored = store.inner.snapshot();
    let ids: Vec<&str> = stored.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "the re-created database holds the whole replica"
    );
    assert_eq!(stored.outbox.len(), engine.replica().outbox_depth());
}

#[test]
fn a_failed_recreate_rejects_the_write_and_takes_it_back_out_of_memory() {
    let store = LosingStore::default();
    let engine = device(&store);
    let t = write(&engine, "a", Change::Put(fields(json!({"title": "a1"}))));
    block_on(engine.flush(t)).unwrap();
    let t = write(&engine, "x", Change::Put(fields(json!({"title": "x1"}))));
    block_on(engine.flush(t)).unwrap();
    let outbox_before = outbox(&engine);
    engine.take_changed_collections();

    // The database is deleted, and storage then refuses the re-creation.
    store.lost.set(true);
    store.recreate_fails.set(true);
    write(&engine, "b", Change::Put(fields(json!({"title": "b1"}))));
    let t = write(&engine, "a", Change::Patch(fields(json!({"title": "a2"}))));
    let error = block_on(engine.flush(t)).unwrap_err();

    assert_eq!(error.code, ErrorCode::StorageLost, "{error:?}");
    assert_eq!(
        title(&engine, "b"),
        None,
        "the new record is not left visible"
    );
    assert_eq!(
        title(&engine, "a").as_deref(),
        Some("a1"),
        "the edit is taken back"
    );
    assert_eq!(title(&engine, "x").as_deref(), Some("x1"));
    assert_eq!(
        outbox(&engine),
        outbox_before,
        "the outbox is as it was before the refused writes"
    );
    assert!(
        engine.take_changed_collections().contains("notes"),
        "views of the collection recompute, so observables drop the refused writes"
    );

    // Storage comes back: the next write re-creates the database with exactly what the app
    // was told is saved, plus the new write.
    store.recreate_fails.set(false);
    let t = write(&engine, "c", Change::Put(fields(json!({"title": "c1"}))));
    block_on(engine.flush(t)).unwrap();
    let stored = store.inner.snapshot();
    let titles: Vec<(String, String)> = stored
        .records
        .iter()
        .map(|r| {
            let t = r.state.fields.get("title").and_then(|v| v.as_str());
            (r.id.clone(), t.unwrap_or_default().to_owned())
        })
        .collect();
    let expected = [("a", "a1"), ("c", "c1"), ("x", "x1")].map(|(i, t)| (i.into(), t.into()));
    assert_eq!(titles, expected);
    assert_eq!(stored.outbox.len(), engine.replica().outbox_depth());
}

#[test]
fn a_commit_aborted_as_the_storage_was_lost_is_kept_by_the_recreation() {
    let store = LosingStore::default();
    let engine = device(&store);
    let t = write(&engine, "a", Change::Put(fields(json!({"title": "a1"}))));
    block_on(engine.flush(t)).unwrap();

    // The commit's transaction aborts without naming the loss (what Chromium does while it
    // clears the site's data); the reload after it then finds the database replaced.
    store.lost.set(true);
    *store.next_commit_fails.borrow_mut() =
        Some(StoreError::Other("the transaction was aborted".into()));
    let t = write(&engine, "b", Change::Put(fields(json!({"title": "b1"}))));
    block_on(engine.flush(t)).expect("the write is durable in the re-created database");

    assert_eq!(store.recreations.get(), 1);
    let stored = store.inner.snapshot();
    let ids: Vec<&str> = stored.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "the re-created database holds the write");
    assert_eq!(stored.outbox.len(), engine.replica().outbox_depth());
    assert_eq!(title(&engine, "b").as_deref(), Some("b1"));
}

#[test]
fn a_failed_commit_whose_reload_fails_too_is_taken_back_out_of_memory() {
    let store = LosingStore::default();
    let engine = device(&store);
    let t = write(&engine, "a", Change::Put(fields(json!({"title": "a1"}))));
    block_on(engine.flush(t)).unwrap();
    let outbox_before = outbox(&engine);

    *store.next_commit_fails.borrow_mut() =
        Some(StoreError::Other("the transaction was aborted".into()));
    *store.next_load_fails.borrow_mut() =
        Some(StoreError::Unavailable("the connection was closed".into()));
    write(&engine, "b", Change::Put(fields(json!({"title": "b1"}))));
    let t = write(&engine, "a", Change::Patch(fields(json!({"title": "a2"}))));
    assert!(block_on(engine.flush(t)).is_err());

    assert_eq!(
        title(&engine, "b"),
        None,
        "the refused new record is not visible"
    );
    assert_eq!(
        title(&engine, "a").as_deref(),
        Some("a1"),
        "the refused edit is taken back"
    );
    assert_eq!(outbox(&engine), outbox_before);

    // The next write is stored, and nothing of the refused ones comes back with it.
    let t = write(&engine, "c", Change::Put(fields(json!({"title": "c1"}))));
    block_on(engine.flush(t)).unwrap();
    let stored = store.inner.snapshot();
    let ids: Vec<&str> = stored.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
}

/// Pending once, then ready: lets the other half of a join run before the rest of a commit.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The loopback transport, noting the cursor of every pull it is asked for.
struct CountingTransport {
    inner: LoopbackTransport,
    pulled_at: Rc<RefCell<Vec<u64>>>,
}

impl Transport for CountingTransport {
    async fn push(
        &self,
        req: &PushRequest,
        meta: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        self.inner.push(req, meta).await
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        self.pulled_at.borrow_mut().push(cursor);
        self.inner.pull(cursor, limit, meta).await
    }
}

#[test]
fn a_pull_page_fetched_while_the_storage_was_lost_and_recreated_is_asked_again_from_zero() {
    // Another device put 6 notes on the server.
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let writer = open_engine(
        MemoryStore::default(),
        LoopbackTransport::new(server.clone(), "t"),
        notes_config(),
        3,
    );
    for i in 0..6 {
        let id = format!("n{i}");
        writer
            .write("notes", &id, Change::Put(fields(json!({"title": id}))))
            .unwrap();
    }
    block_on(writer.sync());
    assert_eq!(writer.replica().outbox_depth(), 0);

    // This device pulls them 2 at a time; its storage is lost at the commit of the first
    // page, while the second page is being fetched.
    let store = LosingStore::default();
    let pulled_at = Rc::new(RefCell::new(Vec::new()));
    let mut config = notes_config();
    config.pull_limit = 2;
    let reader = open_engine(
        store.clone(),
        CountingTransport {
            inner: LoopbackTransport::new(server, "t"),
            pulled_at: pulled_at.clone(),
        },
        config,
        9,
    );
    store.lost_at_commit.set(Some(0));
    block_on(reader.sync());

    assert_eq!(store.recreations.get(), 1);
    let pulled_at = pulled_at.borrow().clone();
    // The re-creation reset the cursor for a full resync: the page fetched meanwhile (asked
    // at the first page's cursor) is dropped and the pull starts again from 0.
    assert_eq!(
        pulled_at.iter().filter(|&&c| c == 0).count(),
        2,
        "pulls by cursor: {pulled_at:?}"
    );
    let stored = store.inner.snapshot();
    assert_eq!(stored.records.len(), 6, "every note is stored");
    assert_eq!(
        stored.meta.map(|m| m.cursor),
        Some(reader.replica().cursor())
    );
    assert!(!reader.replica().meta().resyncing, "the resync finished");
}
