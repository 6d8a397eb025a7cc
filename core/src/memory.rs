//! In-memory implementations of the ports: a store with durable/volatile separation and
//! injectable failures, a manual clock and seeded entropy. Used by tests and the simulation.

use crate::outbox::OutboxEntry;
use crate::ports::{Clock, Entropy, Store, StoreError};
use crate::replica::{ConflictEntry, DeadLetter, LocalRecord, Meta, StoredState, WriteBatch};
use crate::role::Role;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Default, Debug, Clone)]
struct Durable {
    meta: Option<Meta>,
    records: BTreeMap<(String, String), LocalRecord>,
    outbox: BTreeMap<String, OutboxEntry>,
    conflicts: BTreeMap<String, ConflictEntry>,
    dead_letters: BTreeMap<String, DeadLetter>,
}

fn apply<K: Ord + Clone, V: Clone>(into: &mut BTreeMap<K, V>, from: &BTreeMap<K, Option<V>>) {
    for (k, v) in from {
        match v {
            Some(v) => into.insert(k.clone(), v.clone()),
            None => into.remove(k),
        };
    }
}

/// A store whose committed state survives a simulated crash (clones share it).
#[derive(Clone, Default)]
pub struct MemoryStore {
    durable: Rc<RefCell<Durable>>,
    fail_next: Rc<RefCell<Option<StoreError>>>,
    /// Commits to let through before `fail_next` applies (0: the very next one).
    fail_after: Rc<Cell<u64>>,
    commits: Rc<Cell<u64>>,
    /// This handle's writer leads ([`Role::owns_bases`]): its commits skip keeping a newer
    /// stored base, as the browser store's do. Per handle, not shared by clones.
    bases_are_mine: Cell<bool>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next commit fail with `error`, leaving the stored state untouched.
    pub fn fail_next_commit(&self, error: StoreError) {
        self.fail_after.set(0);
        *self.fail_next.borrow_mut() = Some(error);
    }

    /// Lets `skip` commits through, then fails the one after with `error` (a failure deep
    /// in a sync cycle: freezing a batch, folding an ack, folding a page).
    pub fn fail_commit_after(&self, skip: u64, error: StoreError) {
        self.fail_after.set(skip);
        *self.fail_next.borrow_mut() = Some(error);
    }

    /// Whether an injected failure is still waiting for its commit.
    pub fn has_pending_failure(&self) -> bool {
        self.fail_next.borrow().is_some()
    }

    /// Drops an injected failure that no commit met.
    pub fn wipe_pending_failure(&self) {
        *self.fail_next.borrow_mut() = None;
    }

    /// Empties the store, as clearing site data does (every clone sees it).
    pub fn wipe(&self) {
        *self.durable.borrow_mut() = Durable::default();
        *self.fail_next.borrow_mut() = None;
    }

    /// How many commits succeeded.
    pub fn commit_count(&self) -> u64 {
        self.commits.get()
    }

    /// What is durable now.
    pub fn snapshot(&self) -> StoredState {
        let d = self.durable.borrow();
        StoredState {
            meta: d.meta.clone(),
            records: d.records.values().cloned().collect(),
            outbox: d.outbox.values().cloned().collect(),
            conflicts: d.conflicts.values().cloned().collect(),
            dead_letters: d.dead_letters.values().cloned().collect(),
        }
    }
}

impl Store for MemoryStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        Ok(self.snapshot())
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if self.fail_next.borrow().is_some() {
            if self.fail_after.get() == 0 {
                if let Some(error) = self.fail_next.borrow_mut().take() {
                    return Err(error);
                }
            } else {
                self.fail_after.set(self.fail_after.get() - 1);
            }
        }
        let mut d = self.durable.borrow_mut();
        if let Some(meta) = &batch.meta {
            let mut meta = meta.clone();
            if !self.bases_are_mine.get() {
                keep_stored_clock(d.meta.as_ref(), &mut meta);
            }
            d.meta = Some(meta);
        }
        if self.bases_are_mine.get() {
            apply(&mut d.records, &batch.records);
        } else {
            let records = keep_newer_bases(&d.records, &batch.records);
            apply(&mut d.records, &records);
        }
        apply(&mut d.outbox, &batch.outbox);
        apply(&mut d.conflicts, &batch.conflicts);
        apply(&mut d.dead_letters, &batch.dead_letters);
        self.commits.set(self.commits.get() + 1);
        Ok(())
    }

    fn set_role(&self, role: Role) {
        self.bases_are_mine.set(role.owns_bases());
    }
}

/// The multi-tab commit contract for the meta row, as the browser store keeps it (see
/// `src/store/commit.js`): a writer sharing the store never moves the stored seq or clock
/// back (a follower tab's meta may be older than the leader's).
fn keep_stored_clock(stored: Option<&Meta>, meta: &mut Meta) {
    if let Some(stored) = stored.filter(|s| s.client_id == meta.client_id) {
        meta.next_seq = meta.next_seq.max(stored.next_seq);
        if stored.hlc > meta.hlc {
            meta.hlc = stored.hlc.clone();
        }
    }
}

/// The multi-tab commit contract for records: a stored base newer than the one being written
/// is kept (only the leader advances bases; a follower's row may carry an older one).
fn keep_newer_bases(
    stored: &BTreeMap<(String, String), LocalRecord>,
    batch: &BTreeMap<(String, String), Option<LocalRecord>>,
) -> BTreeMap<(String, String), Option<LocalRecord>> {
    batch
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            if let (Some(new), Some(old)) = (v.as_mut(), stored.get(k)) {
                if old.version() > new.version() {
                    new.base = old.base.clone();
                }
            }
            (k.clone(), v)
        })
        .collect()
}

/// A clock that moves only when told to. Clones share the time.
#[derive(Clone, Default)]
pub struct ManualClock(Rc<Cell<u64>>);

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        ManualClock(Rc::new(Cell::new(start_ms)))
    }

    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }

    pub fn set(&self, ms: u64) {
        self.0.set(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// Deterministic randomness (SplitMix64). Clones share the sequence.
#[derive(Clone)]
pub struct SeededEntropy(Rc<Cell<u64>>);

impl SeededEntropy {
    pub fn new(seed: u64) -> Self {
        SeededEntropy(Rc::new(Cell::new(seed)))
    }

    /// A uniform number in `0..n` (`n > 0`).
    pub fn below(&self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

impl Entropy for SeededEntropy {
    fn next_u64(&self) -> u64 {
        let mut z = self.0.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.0.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A transport that calls an in-memory server directly, for tests and examples. Switch it
/// offline to see the engine back off; it never loses or duplicates anything itself.
#[derive(Clone)]
pub struct LoopbackTransport {
    pub server: Rc<RefCell<crate::server::MemoryServer>>,
    pub tenant: String,
    pub online: Rc<Cell<bool>>,
}

impl LoopbackTransport {
    pub fn new(server: Rc<RefCell<crate::server::MemoryServer>>, tenant: &str) -> Self {
        LoopbackTransport {
            server,
            tenant: tenant.to_owned(),
            online: Rc::new(Cell::new(true)),
        }
    }
}

impl crate::ports::Transport for LoopbackTransport {
    async fn push(
        &self,
        req: &crate::protocol::PushRequest,
        _: &crate::ports::RequestMeta,
    ) -> Result<crate::protocol::PushResponse, crate::ports::TransportError> {
        use crate::ports::TransportError;
        if !self.online.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let result = self
            .server
            .borrow_mut()
            .push(&self.tenant, req, &crate::apply::AcceptAll);
        result.map_err(|e| TransportError::Http {
            status: 422,
            code: "op_id_reused".into(),
            message: format!("{e:?}"),
            retry_after_ms: None,
        })
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &crate::ports::RequestMeta,
    ) -> Result<crate::protocol::PullResponse, crate::ports::TransportError> {
        use crate::ports::TransportError;
        if !self.online.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let page =
            self.server
                .borrow()
                .pull_filtered(&self.tenant, cursor, limit, &meta.collections);
        page.map_err(|_| TransportError::CursorExpired)
    }
}
