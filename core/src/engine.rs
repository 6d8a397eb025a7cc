//! The engine: drives a [`Replica`] through the ports — commits local writes in groups,
//! runs sync cycles (push every batch, then pull every page), refreshes credentials once on
//! a 401, and feeds the outcome to the [`SyncState`] machine.
//!
//! Borrows of the replica never live across an `.await`, so an app may write while a sync
//! cycle is waiting on the network.
//!
//! Every change reaches the store through the engine's one commit pipeline
//! (`engine/commit.rs`), and the replica is replaced only by the engine (after a failed
//! commit, or [`Engine::reload`] after another writer committed), always configured from the
//! engine's one [`Role`].

mod checks;
mod commit;
mod critical_first;
mod cycle;
mod join;
mod priority;
mod refresh;
mod storage_lost;
mod undo;

use crate::error::CoreError;
use crate::ids::{new_client_id, traceparent};
use crate::metrics::{Metrics, MetricsReport};
use crate::outbox::idempotency_key;
use crate::outcomes::{OutcomeEvent, OutcomeQueue};
use crate::ports::{
    Clock, Entropy, RequestMeta, Store, StoreError, TokenSource, Transport, TransportError,
};
use crate::protocol::{PullResponse, PushRequest, PushResponse};
use crate::replica::{Change, Event, Replica, ReplicaConfig};
pub use crate::role::Role;
use crate::state::Status;
use crate::state::{Failure, SyncState};
pub use commit::rolled_back;
use commit::CommitPipeline;
pub use cycle::classify;
pub use refresh::{Committed, MAX_COMMITTED_KEYS};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use undo::WriteUndo;

/// Most push rounds in one cycle (conflict re-pushes can chain while others keep writing).
const MAX_PUSH_ROUNDS: usize = 64;

/// Most committed events kept for [`Engine::take_events`] when nobody drains them.
pub const MAX_UNDRAINED_EVENTS: usize = 10_000;

/// Polls a future to completion on this thread. For futures that never wait on real IO
/// (the in-memory ports); a future that stays pending is a bug and panics.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("block_on: the future never completed (it waits on real IO)")
}

/// Progress of the current or last cycle, for progress bars.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub pushed: u64,
    pub push_total: u64,
    pub pulled: u64,
    pub pull_estimate: u64,
}

/// How a finished cycle went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CycleOutcome {
    /// Pushed everything and pulled up to the server's cursor.
    Synced,
    /// Stopped early; the state machine holds the reason and the next retry time.
    Failed(String),
}

/// Identifies a group of local writes: a commit failure rolls back every write of its
/// generation, and writes made while it was in flight learn so from [`Engine::flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteTicket(pub(crate) u64);

/// A replica with its ports.
pub struct Engine<S, T, A, C, E> {
    store: S,
    transport: T,
    tokens: A,
    clock: C,
    entropy: E,
    replica: RefCell<Replica>,
    state: RefCell<SyncState>,
    token: RefCell<Option<String>>,
    role: Cell<Role>,
    commits: CommitPipeline,
    /// Before-images of local writes not yet durable (see `engine/undo.rs`).
    undo: WriteUndo,
    events: RefCell<Vec<Event>>,
    outcomes: RefCell<OutcomeQueue>,
    metrics: RefCell<Metrics>,
    progress: RefCell<Progress>,
    /// The link's hints and last round trip (see `engine/priority.rs`).
    link: RefCell<priority::Link>,
    /// What this engine's commits wrote, for the other writers (see `engine/refresh.rs`).
    committed: RefCell<Committed>,
}

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// Loads the replica from the store (creating its identity on first use). The engine
    /// starts as [`Role::Leader`] when `config.coalesce` is set, else as a follower.
    pub async fn open(
        store: S,
        transport: T,
        tokens: A,
        clock: C,
        entropy: E,
        config: ReplicaConfig,
    ) -> Result<Self, CoreError> {
        let role = match config.coalesce {
            true => Role::Leader,
            false => Role::Follower,
        };
        store.set_role(role);
        let stored = store.load().await?;
        let replica = Replica::open(stored, config, || new_client_id(&entropy));
        let engine = Engine {
            store,
            transport,
            tokens,
            clock,
            entropy,
            replica: RefCell::new(replica),
            state: RefCell::new(SyncState::default()),
            token: RefCell::new(None),
            role: Cell::new(role),
            commits: CommitPipeline::default(),
            undo: WriteUndo::default(),
            events: RefCell::new(Vec::new()),
            outcomes: RefCell::new(OutcomeQueue::default()),
            metrics: RefCell::new(Metrics::default()),
            progress: RefCell::new(Progress::default()),
            link: RefCell::default(),
            committed: RefCell::new(Committed::none()),
        };
        engine.commit().await?;
        Ok(engine)
    }

    /// Reads the replica (never hold the borrow across an `.await`).
    pub fn replica(&self) -> std::cell::Ref<'_, Replica> {
        self.replica.borrow()
    }

    /// Changes the replica directly; commit with [`Engine::flush`]. Adapters use
    /// [`Engine::act`] instead.
    pub fn replica_mut(&self) -> std::cell::RefMut<'_, Replica> {
        self.replica.borrow_mut()
    }

    /// Runs an action on the replica (conflict and dead-letter actions) like a local write:
    /// visible at once, durable after [`Engine::flush`] with the returned ticket.
    pub fn act<R>(
        &self,
        action: impl FnOnce(&mut Replica, u64) -> Result<R, CoreError>,
    ) -> Result<(R, WriteTicket), CoreError> {
        let now = self.clock.now_ms();
        let out = action(&mut self.replica.borrow_mut(), now)?;
        self.state.borrow_mut().nudge(now);
        Ok((out, self.ticket()))
    }

    /// The collections whose records changed since the last call (for live queries).
    pub fn take_changed_collections(&self) -> BTreeSet<String> {
        self.replica.borrow_mut().take_changed_collections()
    }

    /// The records changed since the last call, one by one (for live queries and indexes).
    pub fn take_changes(&self) -> crate::changes::Changes {
        self.replica.borrow_mut().take_changes()
    }

    /// This replica's role among the writers sharing its store.
    pub fn role(&self) -> Role {
        self.role.get()
    }

    /// Changes the role without reloading: coalescing and the store's base ownership follow.
    /// A follower becoming leader must reload first ([`Engine::reload`] with the new role),
    /// so it holds what every earlier leader stored.
    pub fn set_role(&self, role: Role) {
        self.role.set(role);
        self.replica.borrow_mut().set_coalesce(role.coalesces());
        self.store.set_role(role);
    }

    /// Replaces the replica with what is stored (another writer committed), taking `role`
    /// at the same moment. `Ok(false)`: nothing done, because local changes are unsaved or a
    /// commit or sync cycle is under way; try again later.
    pub async fn reload(&self, role: Role) -> Result<bool, CoreError> {
        if self.is_busy() {
            return Ok(false);
        }
        let place = self.commits.enter();
        place.turn().await;
        let Some(stored) = self.read_or_recreate(self.store.load()).await? else {
            return Ok(true);
        };
        if self.is_busy_besides(place.has_followers()) {
            return Ok(false);
        }
        self.replace_replica(stored, role);
        drop(place);
        // Opening repairs an outbox entry whose record row is missing (another tab removed
        // the record — a partial-sync removal, say — while this tab's edit of it was being
        // stored). The repair is unsaved, and an unsaved replica counts as busy: a tab that
        // never writes again could then never reload, nor take over as the leader. So it is
        // saved now; a failed commit reloads from the store and is tried again next time.
        if self.replica.borrow().has_unsaved_changes() {
            let _ = self.commit().await;
        }
        Ok(true)
    }

    fn is_busy(&self) -> bool {
        self.is_busy_besides(self.commits.is_busy())
    }

    fn is_busy_besides(&self, committing: bool) -> bool {
        committing
            || self.replica.borrow().has_unsaved_changes()
            || self.state.borrow().status == Status::Syncing
    }

    /// Swaps in a replica opened from `stored`, configured for `role`.
    fn replace_replica(&self, stored: crate::replica::StoredState, role: Role) {
        let (client_id, mut config) = {
            let r = self.replica.borrow();
            (r.client_id().to_owned(), r.config().clone())
        };
        config.coalesce = role.coalesces();
        *self.replica.borrow_mut() = Replica::open(stored, config, || client_id);
        self.role.set(role);
        self.store.set_role(role);
    }

    pub fn sync_state(&self) -> SyncState {
        self.state.borrow().clone()
    }

    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    pub fn metrics(&self) -> MetricsReport {
        self.metrics.borrow().report()
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A local write, visible at once; durable after the next [`Engine::flush`] with its ticket.
    pub fn write(
        &self,
        collection: &str,
        id: &str,
        change: Change,
    ) -> Result<(Option<String>, WriteTicket), CoreError> {
        let now = self.clock.now_ms();
        self.undo.note(collection, id, || {
            self.replica.borrow().record_image(collection, id)
        });
        let entry = self
            .replica
            .borrow_mut()
            .write(collection, id, change, now)?;
        self.state.borrow_mut().nudge(now);
        Ok((entry, self.ticket()))
    }

    /// The ticket of writes made now.
    pub fn ticket(&self) -> WriteTicket {
        self.commits.ticket()
    }

    /// Makes every write so far durable in one transaction. Fails if the commit fails, or if
    /// the ticket's writes were rolled back by an earlier failed commit.
    pub async fn flush(&self, ticket: WriteTicket) -> Result<(), CoreError> {
        self.commit().await?;
        // A commit started earlier (by a sync cycle, say) may carry this ticket's writes:
        // they are durable only once it has finished.
        self.commits.settled().await;
        self.commits.check(ticket)
    }

    /// After [`Engine::flush`] settled: whether the writes of an earlier `ticket` were kept
    /// (a commit failed since they were made).
    pub fn check(&self, ticket: WriteTicket) -> Result<(), CoreError> {
        self.commits.check(ticket)
    }

    /// Resolves once every commit started so far has finished.
    pub async fn settled(&self) {
        self.commits.settled().await
    }

    /// Commits what the replica changed, through the pipeline (see `engine/commit.rs`). On
    /// failure the replica is reloaded from the store, so memory never shows what storage
    /// refused.
    async fn commit(&self) -> Result<(), CoreError> {
        let (batch, events, undo_batch) = {
            let mut r = self.replica.borrow_mut();
            if !r.has_unsaved_changes() {
                return Ok(());
            }
            (r.take_writes(), r.take_events(), self.undo.seal())
        };
        let place = self.commits.enter();
        place.commit_turn().await?;
        let stored = match self.store.commit(&batch).await {
            // The batch is part of the replica the storage is re-created from.
            Err(StoreError::Lost(reason)) => match self.recreate_store(reason).await {
                Ok(()) => Ok(()),
                // Nothing stored to reload: take the writes back out of memory instead.
                Err(error) => return Err(self.roll_back_unstorable(&place, undo_batch, error)),
            },
            other => other,
        };
        let Err(error) = stored else {
            self.undo.forget(undo_batch);
            self.kept(&batch, events);
            return Ok(());
        };
        // Later commits wait (they are still behind this place) until the reload is done
        // and the generation has moved on; then they see they are stale.
        match self.read_or_recreate(self.store.load()).await {
            // The commit failed because the storage was lost under it (a transaction
            // aborted as the site's data was cleared): the replica, this batch included, has
            // just been written into the storage that is there now, so the batch is durable
            // after all. Rolling it back would drop a write for a failure already repaired.
            Ok(None) => {
                self.kept(&batch, events);
                Ok(())
            }
            Ok(Some(reloaded)) => {
                self.undo.forget(undo_batch);
                self.replace_replica(reloaded, self.role.get());
                place.roll_back();
                Err(error.into())
            }
            // Nothing read to replace memory with: take the refused writes back out of it,
            // so no write whose commit failed stays visible.
            Err(reload_failed) => {
                self.take_back_writes(&place, undo_batch);
                Err(reload_failed)
            }
        }
    }

    /// Takes note of a batch that is durable now: its keys for other tabs, its events for
    /// the app.
    fn kept(&self, batch: &crate::replica::WriteBatch, events: Vec<Event>) {
        self.committed.borrow_mut().add(batch.records.keys());
        self.note_corrupt_data(&events);
        self.outcomes.borrow_mut().record(&events);
        let mut kept = self.events.borrow_mut();
        if kept.len().saturating_add(events.len()) > MAX_UNDRAINED_EVENTS {
            // Nobody drains them (the browser listens to outcomes instead): keep the
            // newest, so a long-lived tab does not grow without bound.
            let held = kept.len();
            let excess = (held + events.len()).saturating_sub(MAX_UNDRAINED_EVENTS);
            kept.drain(..excess.min(held));
        }
        kept.extend(events);
    }

    /// Keeps the last repaired inconsistency of stored data in the sync state.
    fn note_corrupt_data(&self, events: &[Event]) {
        for event in events {
            if let Event::CorruptData {
                collection,
                record_id,
                detail,
            } = event
            {
                self.state.borrow_mut().last_corrupt_data = Some(crate::state::CorruptSeen {
                    at_ms: self.clock.now_ms(),
                    collection: collection.clone(),
                    record_id: record_id.clone(),
                    detail: detail.clone(),
                });
            }
        }
    }

    /// Whether a commit is under way (its batch is taken from the replica but not yet
    /// stored, or the replica is being reloaded).
    pub fn is_committing(&self) -> bool {
        self.commits.is_busy()
    }

    /// Events of committed changes since the last call (the newest
    /// [`MAX_UNDRAINED_EVENTS`] when nobody drained them).
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.borrow_mut())
    }

    /// What the app should hear about since the last call, oldest first: merges, conflicts,
    /// dead letters, rollbacks, lost storage (see `outcomes.rs`; bounded when not drained).
    pub fn drain_outcomes(&self) -> Vec<OutcomeEvent> {
        self.outcomes.borrow_mut().drain()
    }

    /// Queues an outcome the engine cannot see itself (the browser layer's `StorageLost`).
    pub fn report_outcome(&self, outcome: OutcomeEvent) {
        self.outcomes.borrow_mut().push(outcome);
    }

    /// How many outcomes were dropped because nobody drained them.
    pub fn outcomes_dropped(&self) -> u64 {
        self.outcomes.borrow().dropped()
    }

    /// The browser reports the network is back.
    pub fn network_up(&self) {
        self.state.borrow_mut().network_up(self.clock.now_ms());
    }

    /// The browser reports the network is gone.
    pub fn network_down(&self) {
        self.state.borrow_mut().network_down();
    }

    /// Ask for a cycle soon (poke, visibility, app request).
    pub fn nudge(&self) {
        self.state.borrow_mut().nudge(self.clock.now_ms());
    }

    /// Whether a cycle is due now, and when the next one will be.
    pub fn is_due(&self) -> bool {
        self.state.borrow().is_due(self.clock.now_ms())
    }

    pub fn next_attempt_at_ms(&self) -> Option<u64> {
        self.state.borrow().next_retry_at_ms
    }
}
