//! One open Ferry: the core engine on the browser's ports, plus everything around it that
//! the JS API needs — group commit of local writes, live views, the network loop (leader
//! only) and the notices between tabs.
//!
//! Writes change the replica and the views at once; the flush of all writes of one tick is
//! ONE task (spawned on the microtask queue by the first write of the tick), so they share
//! one IndexedDB transaction, and every write's promise settles when that commit does.

mod early;
mod link;
pub mod migrate;
mod network;
mod outcomes;
mod queries;
mod signal;
mod tabs;
mod views;

use crate::platform::{random_hex, CryptoEntropy, JsClock, JsTokens};
use crate::store::IdbStore;
use crate::subject::Subject;
use crate::tabs::{Channel, Leadership};
use crate::transport::{FetchTransport, LiveStream};
pub use early::EarlyOpen;
use ferry_core::btree::CollectBTree;
use ferry_core::engine::{Engine, Role, WriteTicket};
use ferry_core::policy::Policy;
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_core::{CoreError, ErrorCode};
use js_sys::{Function, Promise};
pub use queries::{LiveQuerySpec, Query};
use signal::Signal;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsValue;

/// The engine with the browser's ports.
pub type BrowserEngine = Engine<IdbStore, FetchTransport, JsTokens, JsClock, CryptoEntropy>;

/// What `Ferry.open` was given, checked.
pub struct ClientOptions {
    pub name: String,
    pub url: String,
    pub get_token: Option<Function>,
    pub collections: Vec<(String, Policy)>,
    /// The declared indexes of the collections (`collections.<name>.indexes`).
    pub indexes: Vec<ferry_core::query::IndexDecl>,
    pub encryption_key: Option<JsValue>,
    pub fetch: Option<Function>,
    /// Whether to listen to the server's event stream (else poll).
    pub live: bool,
    pub timeout_ms: u32,
    /// The package entry's early read, when it started one (see `early.rs`).
    pub early_open: Option<Promise>,
    /// The app's data version and migration (`version`, `migrate`; see `migrate.rs`).
    pub migration: Option<migrate::Migration>,
    /// Each collection's priority (`collections.<name>.priority`; unnamed: normal).
    pub priorities: Vec<(String, ferry_core::priority::Priority)>,
}

/// A write waiting for its commit.
struct Pending {
    resolve: Function,
    reject: Function,
    ticket: WriteTicket,
}

/// One open Ferry.
pub struct Client {
    pub engine: BrowserEngine,
    pub store: IdbStore,
    transport: FetchTransport,
    pub options: ClientOptions,
    instance: String,
    me: Weak<Client>,
    closed: Cell<bool>,
    wake: Signal,
    pending: RefCell<Vec<Pending>>,
    flush_scheduled: Cell<bool>,
    sync_state_scheduled: Cell<bool>,
    /// Whether a debounced wake of the network loop is pending.
    wake_pending: Cell<bool>,
    /// Whether the loop taking in other tabs' commits runs, and what it has yet to take in
    /// (see `tabs.rs`).
    refresh_running: Cell<bool>,
    refresh_pending: RefCell<Option<ferry_core::engine::Committed>>,
    pub(crate) sync_state: Rc<Subject>,
    pub(crate) conflicts: Rc<Subject>,
    pub(crate) dead_letters: Rc<Subject>,
    pub(crate) outcomes: Rc<Subject>,
    outcome_log: RefCell<outcomes::OutcomeLog>,
    queries: RefCell<Vec<Weak<Query>>>,
    computations: RefCell<BTreeMap<String, u64>>,
    /// The declared indexes, built on first use and kept up to date from change sets.
    indexes: RefCell<ferry_core::query::Indexes>,
    storage: RefCell<serde_json::Value>,
    leader_state: RefCell<Option<serde_json::Value>>,
    leadership: RefCell<Option<Leadership>>,
    /// The other tabs of this database that have spoken (see `tabs.rs`).
    peers: RefCell<std::collections::BTreeSet<String>>,
    channel: RefCell<Option<Channel>>,
    live: RefCell<Option<LiveStream>>,
    listeners: RefCell<Vec<network::Listener>>,
}

impl Client {
    /// Opens the database, loads the replica and joins the other tabs (as a follower until
    /// the leader lock is granted).
    pub async fn open(mut options: ClientOptions) -> Result<Rc<Client>, CoreError> {
        let mut early = EarlyOpen::settle(options.early_open.take()).await;
        let opened = Self::open_with(options, &mut early).await;
        if opened.is_err() {
            // The lock is held until released: give it to the next tab.
            early.release();
        }
        opened
    }

    async fn open_with(
        options: ClientOptions,
        early_read: &mut EarlyOpen,
    ) -> Result<Rc<Client>, CoreError> {
        let cipher = match &options.encryption_key {
            Some(key) => Some(
                crate::crypto::Cipher::from_js(key)
                    .await
                    .map_err(|m| CoreError::new(ErrorCode::Storage, m))?,
            ),
            None => None,
        };
        let store = IdbStore::open(&options.name, cipher).await?;
        store.set_indexes(options.indexes.clone());
        // The leader lock, when free, is taken before loading: then the load already is the
        // leader's (no reload once leading), and the replica coalesces from the start.
        // The package entry may have taken it already, and read everything under it.
        let mut early = match early_read.take_lock(&store) {
            Some(lock) => Some(lock),
            None => Leadership::try_now(&Self::leader_lock(&options.name)).await,
        };
        let instance = format!("-t{}", random_hex(4));
        let mut config = ReplicaConfig::new(options.collections.clone());
        config.instance = instance.clone();
        config.priorities = options.priorities.iter().cloned().collect_btree_map();
        // The role the engine starts in (see `Engine::open`).
        config.coalesce = early.is_some();
        // The tabs' channel opens before the load reads anything (or was opened before the
        // early read): what other tabs commit meanwhile is heard (see `tabs.rs`).
        let (inbox, channel) = tabs::TabInbox::listen(&options.name, early_read.take_channel());
        let transport =
            FetchTransport::new(&options.url, options.fetch.clone(), options.timeout_ms);
        let tokens = JsTokens::new(options.get_token.clone());
        let engine = Engine::open(
            store.clone(),
            transport.clone(),
            tokens,
            JsClock,
            CryptoEntropy,
            config,
        )
        .await;
        let engine = match engine {
            Ok(engine) => match &options.migration {
                // Migrated before any view, query or other tab sees the replica.
                Some(m) => {
                    match migrate::run(&engine, m, &mut early, &Self::leader_lock(&options.name))
                        .await
                    {
                        Ok(()) => Ok(engine),
                        Err(e) => Err(e),
                    }
                }
                None => Ok(engine),
            },
            Err(e) => Err(e),
        };
        let engine = match engine {
            Ok(engine) => engine,
            Err(e) => {
                // The lock is held until released: give it to the next tab.
                if let Some(lock) = &early {
                    lock.release();
                }
                channel.close();
                store.close();
                return Err(e);
            }
        };
        let indexes = ferry_core::query::Indexes::new(options.indexes.clone());
        let client = Rc::new_cyclic(|me| Client {
            engine,
            store,
            transport,
            options,
            instance,
            me: me.clone(),
            closed: Cell::new(false),
            wake: Signal::default(),
            pending: RefCell::new(Vec::new()),
            flush_scheduled: Cell::new(false),
            sync_state_scheduled: Cell::new(false),
            wake_pending: Cell::new(false),
            refresh_running: Cell::new(false),
            refresh_pending: RefCell::new(None),
            sync_state: Rc::new(Subject::default()),
            conflicts: Rc::new(Subject::default()),
            dead_letters: Rc::new(Subject::default()),
            outcomes: Rc::new(Subject::new(js_sys::Array::new().into())),
            outcome_log: RefCell::new(Default::default()),
            queries: RefCell::new(Vec::new()),
            computations: RefCell::new(BTreeMap::new()),
            indexes: RefCell::new(indexes),
            storage: RefCell::new(
                serde_json::json!({"persisted": false, "usage": null, "quota": null}),
            ),
            leader_state: RefCell::new(None),
            leadership: RefCell::new(None),
            peers: RefCell::new(Default::default()),
            channel: RefCell::new(None),
            live: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
        });
        client.publish_all();
        client.join_tabs(early, &inbox, channel);
        client.listen_to_browser();
        client.watch_link();
        client.watch_storage();
        client.clone().spawn_storage_check(true);
        if client.is_leader() {
            // Rows written under other declarations (or none) get their index keys, so the
            // next page load's first page can come from the index. It runs beside the engine
            // in small transactions; if it fails, that load waits for the records instead.
            let store = client.store.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = store.keep_indexed().await;
            });
        }
        Ok(client)
    }

    fn rc(&self) -> Option<Rc<Client>> {
        self.me.upgrade()
    }

    /// Whether this tab leads: the engine's [`Role`], the one place it is kept.
    pub fn is_leader(&self) -> bool {
        self.engine.role() == Role::Leader
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn check_open(&self) -> Result<(), CoreError> {
        match self.closed.get() {
            true => Err(CoreError::new(
                ErrorCode::Closed,
                "this Ferry is closed; open a new one",
            )),
            false => Ok(()),
        }
    }

    /// A local write: visible at once; the promise settles when it is durable.
    pub fn write(&self, collection: &str, id: &str, change: Change) -> Result<Promise, CoreError> {
        self.check_open()?;
        let (_, ticket) = self.engine.write(collection, id, change)?;
        self.changed(false);
        Ok(self.durable(ticket))
    }

    /// Runs `change` on the replica (conflict and dead-letter actions) like a write.
    pub fn act(
        &self,
        change: impl FnOnce(&mut ferry_core::replica::Replica, u64) -> Result<(), CoreError>,
    ) -> Result<Promise, CoreError> {
        self.check_open()?;
        let ((), ticket) = self.engine.act(change)?;
        self.changed(true);
        Ok(self.durable(ticket))
    }

    /// A promise for the commit of everything written so far, shared by the writes of a tick.
    fn durable(&self, ticket: WriteTicket) -> Promise {
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, reject| slot = Some((resolve, reject)));
        if let Some((resolve, reject)) = slot {
            self.pending.borrow_mut().push(Pending {
                resolve,
                reject,
                ticket,
            });
        }
        if !self.flush_scheduled.replace(true) {
            if let Some(me) = self.rc() {
                wasm_bindgen_futures::spawn_local(async move { me.flush().await });
            }
        }
        promise
    }

    /// Commits the writes of this tick in one transaction and settles their promises.
    async fn flush(self: Rc<Self>) {
        self.flush_scheduled.set(false);
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let Some(ticket) = pending.last().map(|p| p.ticket) else {
            return;
        };
        // The engine waits for every commit started before, so writes that went out with
        // a commit of the sync loop are durable (or rolled back) when this returns.
        let result = self.engine.flush(ticket).await;
        for p in pending {
            let settle = match result.clone().and_then(|()| self.engine.check(p.ticket)) {
                Ok(()) => p.resolve.call0(&JsValue::UNDEFINED),
                Err(e) => p
                    .reject
                    .call1(&JsValue::UNDEFINED, &crate::interop::core_error(&e)),
            };
            let _ = settle;
        }
        // Let the callers' continuations run first: publishing (broadcast, live-query
        // recompute, sync state) is not what their `await` is waiting for.
        let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::UNDEFINED))
            .await;
        self.after_commit(result.is_ok());
    }

    /// After a local commit: tell the other tabs, update the views (after a failed commit
    /// the engine reloaded the replica, which reports every collection as changed), nudge
    /// the network loop.
    fn after_commit(&self, ok: bool) {
        if ok {
            self.announce_commits();
            self.wake_network(true);
        }
        self.changed(true);
    }

    /// Asks for a sync now (`syncNow()`); followers ask the leader.
    pub fn sync_now(&self) {
        self.engine.nudge();
        if self.is_leader() {
            self.wake_network(false);
        } else {
            self.broadcast(serde_json::json!({"t": "sync", "from": self.instance}));
        }
    }

    /// Closes: gives up leadership, stops the loop and the streams, closes the database.
    pub async fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        if self.flush_scheduled.get() || !self.pending.borrow().is_empty() {
            self.engine.settled().await;
        }
        self.engine.set_role(Role::Follower);
        if let Some(leadership) = self.leadership.borrow_mut().take() {
            leadership.release();
        }
        self.broadcast(serde_json::json!({"t": "bye", "from": self.instance}));
        if let Some(channel) = self.channel.borrow_mut().take() {
            channel.close();
        }
        self.live.borrow_mut().take();
        self.listeners.borrow_mut().clear();
        self.wake.notify();
        self.engine.settled().await;
        self.store.close();
    }

    fn broadcast(&self, message: serde_json::Value) {
        if let Some(channel) = self.channel.borrow().as_ref() {
            channel.post(&message);
        }
    }

    /// [`Client::broadcast`], only when another tab is known to listen.
    fn tell_peers(&self, message: serde_json::Value) {
        if !self.peers.borrow().is_empty() {
            self.broadcast(message);
        }
    }
}

/// The client behind a JS object, unless it was dropped.
pub fn upgrade(client: &Weak<Client>) -> Result<Rc<Client>, CoreError> {
    client
        .upgrade()
        .ok_or_else(|| CoreError::new(ErrorCode::Closed, "this Ferry is closed"))
}
