//! The IndexedDB store: [`ferry_core::ports::Store`] for the browser.
//!
//! `commit` first encodes (and, with a key, encrypts) the whole batch, then hands it to
//! `commit.js`, which writes it in ONE readwrite transaction scoped to the stores the batch
//! touches, issuing every request in one loop (only the transaction's end comes back into
//! wasm). The commit contract that makes tabs sharing one database safe is kept inside that
//! transaction:
//! - meta: the larger of the stored and the new `next_seq` and clock is kept;
//! - records: a record's base version never goes backwards (a newer stored base is kept).
//!
//! The database's identity: a random id stored in the meta store when the database is
//! created. The handle remembers the identity of the database its replica was loaded from,
//! and every commit verifies it inside its transaction (`commit.js`); a load verifies it
//! too. A database deleted, evicted or cleared under the running tab therefore fails with
//! [`StoreError::Lost`] instead of taking writes into a fresh, partial database; the engine
//! then re-creates it from the replica ([`Store::recreate`]). `close` (the browser closed the
//! connection) and `versionchange` (another tab upgrades or deletes the database) close the
//! connection and tell the client, which asks the engine to check the identity at once.
//! A connection closed without either event (clearing the site's data) is found dead by its
//! next use, reopened and checked the same way (`reconnect.rs`).
//!
//! The store does not order commits itself: the engine's one commit pipeline
//! (`ferry-core`'s `engine/commit.rs`) runs them one at a time, and never while a load
//! that replaces the replica reads. A `versionchange` from another tab closes the database;
//! the next use reopens it.

mod load;
pub use load::js_store_names_match;
pub mod outbox_rows;
mod reconnect;
pub mod rows;
pub mod schema;

use crate::crypto::Cipher;
use crate::platform::js_error_name;
use ferry_core::ports::{Store, StoreError};
use ferry_core::query::IndexDecl;
use ferry_core::replica::{StoredState, WriteBatch};
use ferry_core::role::Role;
use indexed_db_futures::database::Database;
use indexed_db_futures::internals::SystemRepr;
use js_sys::{Array, Promise};
use outbox_rows::OutboxRows;
use rows::{meta_row, BulkRecordRows, Codec, META_KEY};
use schema::{CONFLICTS, DEAD_LETTERS, META, OUTBOX, RECORDS};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/store/commit.js")]
extern "C" {
    /// Writes one batch in one transaction; see `commit.js`.
    #[wasm_bindgen(js_name = commitBatch)]
    fn commit_batch(
        db: &web_sys::IdbDatabase,
        scope: &Array,
        meta: &JsValue,
        meta_store: &str,
        record_store: &str,
        records: &Array,
        keep_newer_bases: bool,
        others: &Array,
        identity: &str,
        new_identity: Option<String>,
    ) -> Promise;
    /// The database's identity, storing `fresh` as it when it has none; see `commit.js`.
    #[wasm_bindgen(js_name = databaseIdentity)]
    fn database_identity(
        db: &web_sys::IdbDatabase,
        meta_store: &str,
        fresh: Option<String>,
    ) -> Promise;
    /// The `records` argument of `commitBatch` from [`BulkRecordRows`]; see `commit.js`.
    #[wasm_bindgen(js_name = recordRows)]
    fn record_rows(text: &str, cuts: &[u32], shapes: &[f64]) -> Array;
    /// The stored index signature; see `commit.js`.
    #[wasm_bindgen(js_name = indexSignature)]
    pub(crate) fn index_signature(db: &web_sys::IdbDatabase) -> Promise;
    /// One key range of the records' index keys, in order; see `commit.js`.
    #[wasm_bindgen(js_name = readIndexRange)]
    pub(crate) fn read_index_range(
        db: &web_sys::IdbDatabase,
        lo: &JsValue,
        lo_open: bool,
        hi: &JsValue,
        hi_open: bool,
        desc: bool,
        count: u32,
    ) -> Promise;
    /// Rewrites the rows whose index keys differ, then stores the signature; see `commit.js`.
    #[wasm_bindgen(js_name = reindexRows)]
    fn reindex_rows(
        db: &web_sys::IdbDatabase,
        signature: Option<String>,
        keys_of: &js_sys::Function,
        batch: u32,
    ) -> Promise;
}

/// How many rows one re-indexing transaction walks (other tabs' commits go between them).
const REINDEX_BATCH: u32 = 2_000;

struct Inner {
    name: String,
    codec: Codec,
    blocked_timeout_ms: u32,
    db: RefCell<Option<Database>>,
    on_version_change: RefCell<Option<Closure<dyn FnMut()>>>,
    /// The identity of the database the replica was loaded from (see the module docs).
    identity: RefCell<String>,
    /// Told when the connection was closed under this handle (`close`, `versionchange`).
    on_closed: RefCell<Option<Rc<dyn Fn()>>>,
    /// Why the storage was found lost, until it is re-created.
    lost_reason: RefCell<Option<String>>,
    /// The losses re-created since the last [`IdbStore::take_recreations`].
    recreations: RefCell<Vec<String>>,
    commits: Cell<u64>,
    /// Whether no other tab can store a newer base than this one holds: the replica leads
    /// ([`Role::owns_bases`], set by the engine through [`Store::set_role`]). Its commits then
    /// skip the read that keeps a newer stored base; everyone else's commits keep doing it.
    bases_are_mine: Cell<bool>,
    /// Which row holds each outbox entry (see `outbox_rows`).
    outbox_rows: RefCell<OutboxRows>,
    /// Rows read before the module was ready, for the first load (see
    /// [`IdbStore::adopt_early_read`]).
    early_read: RefCell<Option<JsValue>>,
    /// Whether a load used them.
    loaded_early: Cell<bool>,
    /// The declared indexes whose keys every written record row carries (`x`).
    indexes: RefCell<Vec<IndexDecl>>,
}

/// An IndexedDB-backed store. Clones share one connection.
#[derive(Clone)]
pub struct IdbStore(Rc<Inner>);

impl IdbStore {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str, cipher: Option<Cipher>) -> Result<IdbStore, StoreError> {
        Self::open_with_blocked_timeout(name, cipher, schema::DEFAULT_BLOCKED_TIMEOUT_MS).await
    }

    /// [`IdbStore::open`], failing with [`StoreError::Unavailable`] when another tab blocks
    /// the upgrade for longer than `blocked_timeout_ms`.
    pub async fn open_with_blocked_timeout(
        name: &str,
        cipher: Option<Cipher>,
        blocked_timeout_ms: u32,
    ) -> Result<IdbStore, StoreError> {
        let store = IdbStore(Rc::new(Inner {
            name: name.to_owned(),
            codec: Codec::new(cipher),
            blocked_timeout_ms,
            db: RefCell::new(None),
            on_version_change: RefCell::new(None),
            identity: RefCell::new(String::new()),
            on_closed: RefCell::new(None),
            lost_reason: RefCell::new(None),
            recreations: RefCell::new(Vec::new()),
            commits: Cell::new(0),
            bases_are_mine: Cell::new(false),
            outbox_rows: RefCell::new(OutboxRows::default()),
            early_read: RefCell::new(None),
            loaded_early: Cell::new(false),
            indexes: RefCell::new(Vec::new()),
        }));
        let db = store.db().await?;
        // A database without an identity is new (or predates identities): it is ours now.
        let identity = identity_of(&db, Some(crate::platform::random_hex(16))).await?;
        *store.0.identity.borrow_mut() = identity.unwrap_or_default();
        Ok(store)
    }

    /// Calls `f` whenever the connection is closed under this handle (the browser closed
    /// it, or another tab wants to upgrade or delete the database).
    pub fn set_on_closed(&self, f: Rc<dyn Fn()>) {
        *self.0.on_closed.borrow_mut() = Some(f);
    }

    /// Why the database was re-created from the replica, once per re-creation since the
    /// last call (the client reports them to the app).
    pub fn take_recreations(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.recreations.borrow_mut())
    }

    /// Notes why the storage is lost, and says so.
    fn lost(&self, error: StoreError) -> StoreError {
        if let StoreError::Lost(reason) = &error {
            *self.0.lost_reason.borrow_mut() = Some(reason.clone());
        }
        error
    }

    /// The identity of the database this handle's replica belongs to.
    pub fn identity(&self) -> String {
        self.0.identity.borrow().clone()
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// How many commits succeeded through this handle.
    pub fn commit_count(&self) -> u64 {
        self.0.commits.get()
    }

    /// Hands the next load the rows the package entry read before the module was ready
    /// (`earlyOpen` in `commit.js`), read under the leader lock this tab now holds. They are
    /// taken only when stored at this schema's version (else the open upgraded the database,
    /// or it is newer than this code) and before any commit of this handle; returns whether
    /// they were taken. Rows that another tab changed since are reloaded on first contact
    /// with it, as for any load (see `client/tabs.rs`).
    pub fn adopt_early_read(&self, version: f64, raw: JsValue) -> bool {
        let fits = version == f64::from(schema::VERSION)
            && raw.is_object()
            && load::identity(&raw).as_deref() == Some(self.0.identity.borrow().as_str())
            && self.0.commits.get() == 0;
        if fits {
            *self.0.early_read.borrow_mut() = Some(raw);
        }
        fits
    }

    /// The declared indexes whose keys the record rows this handle writes carry (none with
    /// encryption at rest: the keys would store the fields in clear).
    pub fn set_indexes(&self, indexes: Vec<IndexDecl>) {
        if !self.0.codec.is_sealed() {
            *self.0.indexes.borrow_mut() = indexes;
        }
    }

    /// Brings the stored index keys up to the declared indexes when the stored signature
    /// says they were built under other declarations (a new database, an app that declared
    /// or dropped an index, a database of an older schema): see `reindexRows` in
    /// `commit.js`. Returns how many rows it rewrote.
    pub async fn keep_indexed(&self) -> Result<u32, StoreError> {
        let indexes = self.0.indexes.borrow().clone();
        let wanted = (!self.0.codec.is_sealed()).then(|| ferry_core::query::signature(&indexes));
        let db = self.db().await?;
        let stored = JsFuture::from(index_signature(db.as_sys()))
            .await
            .map_err(|e| js_store_error("index check", &e))?
            .as_string();
        if stored == wanted {
            return Ok(0);
        }
        let keys_of = Closure::<dyn Fn(JsValue) -> JsValue>::new(move |row: JsValue| {
            rows::plain_record(&row)
                .and_then(|r| rows::index_keys(&indexes, &r))
                .map_or(JsValue::UNDEFINED, |keys| {
                    crate::interop::json_to_js(&serde_json::Value::Array(keys).to_string())
                })
        });
        let rewritten = JsFuture::from(reindex_rows(
            db.as_sys(),
            wanted,
            keys_of.as_ref().unchecked_ref(),
            REINDEX_BATCH,
        ))
        .await
        .map_err(|e| js_store_error("re-index", &e))?;
        Ok(rewritten.as_f64().unwrap_or(0.0) as u32)
    }

    /// Whether the load used rows read before the module was ready.
    pub fn loaded_early(&self) -> bool {
        self.0.loaded_early.get()
    }

    /// Closes the connection; the next use reopens it.
    pub fn close(&self) {
        self.0.on_closed.borrow_mut().take();
        self.drop_connection();
    }

    /// Whether the database still is the one the replica was loaded from.
    async fn verify(&self, db: &Database) -> Result<(), StoreError> {
        let found = identity_of(db, None).await?;
        match found.as_deref() == Some(self.0.identity.borrow().as_str()) {
            true => Ok(()),
            false => Err(self.lost(lost())),
        }
    }

    /// The open connection, reopening it after a `versionchange` closed it.
    async fn db(&self) -> Result<Database, StoreError> {
        if let Some(db) = self.0.db.borrow().as_ref() {
            return Ok(db.clone());
        }
        let db = schema::open(&self.0.name, schema::VERSION, self.0.blocked_timeout_ms).await?;
        let weak = Rc::downgrade(&self.0);
        let on_change = Closure::<dyn FnMut()>::new(move || {
            // Another tab wants to upgrade or delete the database, or the browser closed the
            // connection: let go, reopen on next use, and have the client check at once
            // whether the database is still ours.
            if let Some(inner) = weak.upgrade() {
                if let Some(db) = inner.db.borrow_mut().take() {
                    db.close();
                }
                let notify = inner.on_closed.borrow().clone();
                if let Some(notify) = notify {
                    notify();
                }
            }
        });
        db.as_sys()
            .set_onversionchange(Some(on_change.as_ref().unchecked_ref()));
        db.as_sys()
            .set_onclose(Some(on_change.as_ref().unchecked_ref()));
        *self.0.on_version_change.borrow_mut() = Some(on_change);
        *self.0.db.borrow_mut() = Some(db.clone());
        Ok(db)
    }

    /// Encodes the batch, then writes it in one transaction (see `commit.js`), checking the
    /// database's identity — or, when `new_identity` is given, giving it that identity.
    async fn write(
        &self,
        batch: &WriteBatch,
        new_identity: Option<String>,
    ) -> Result<(), StoreError> {
        let codec = &self.0.codec;
        let compact = self.0.bases_are_mine.get();
        let records = if codec.is_sealed() {
            // Sealing awaits WebCrypto per value: row by row.
            let records = Array::new_with_length((batch.records.len() * 2) as u32);
            for (i, ((collection, id), record)) in batch.records.iter().enumerate() {
                let row: JsValue = match record {
                    Some(r) => codec.record_row(r, compact).await?.into(),
                    None => JsValue::UNDEFINED,
                };
                records.set(
                    2 * i as u32,
                    Array::of2(&collection.into(), &id.into()).into(),
                );
                records.set(2 * i as u32 + 1, row);
            }
            records
        } else {
            let bulk =
                BulkRecordRows::build(batch.records.iter(), compact, &self.0.indexes.borrow())?;
            record_rows(&bulk.text, &bulk.cuts, &bulk.shapes)
        };
        let staged = self.0.outbox_rows.borrow().stage(&batch.outbox)?;
        let outbox = staged.encode(codec).await?;
        let others = Array::new();
        let scope = Array::new();
        for (name, rows) in [
            (OUTBOX, outbox.writes.clone()),
            (
                CONFLICTS,
                keyed(codec, "k", "conflict", &batch.conflicts).await?,
            ),
            (
                DEAD_LETTERS,
                keyed(codec, "k", "dead-letter", &batch.dead_letters).await?,
            ),
        ] {
            if rows.length() > 0 {
                scope.push(&name.into());
                others.push(&name.into());
                others.push(&rows);
            }
        }
        let meta = match &batch.meta {
            Some(meta) => meta_row(meta).into(),
            None => JsValue::UNDEFINED,
        };
        if records.length() > 0 {
            scope.push(&RECORDS.into());
        }
        if scope.length() == 0 && meta.is_undefined() && new_identity.is_none() {
            return Ok(());
        }
        // Always in scope: the identity row is checked (or written) in every commit.
        scope.push(&META.into());
        let keep_newer_bases = !self.0.bases_are_mine.get();
        // A re-creation writes the identity instead of checking it: no verify on reconnect.
        let verify = new_identity.is_none();
        self.on_live_connection(verify, |db| {
            // Built before the await, so no borrow of the identity lives across it.
            let done = commit_batch(
                db.as_sys(),
                &scope,
                &meta,
                META,
                RECORDS,
                &records,
                keep_newer_bases,
                &others,
                &self.0.identity.borrow(),
                new_identity.clone(),
            );
            async move {
                JsFuture::from(done)
                    .await
                    .map(drop)
                    .map_err(|e| js_store_error("commit", &e))
            }
        })
        .await?;
        self.0.outbox_rows.borrow_mut().apply(outbox);
        Ok(())
    }

    /// How many rows hold the outbox as this handle knows it (for tests).
    pub fn outbox_row_count(&self) -> usize {
        self.0.outbox_rows.borrow().row_count()
    }
}

/// `[key, row, key, row, ...]` for one keyed store (row `undefined` = delete).
async fn keyed<T: serde::Serialize>(
    codec: &Codec,
    key_field: &str,
    prefix: &str,
    items: &std::collections::BTreeMap<String, Option<T>>,
) -> Result<Array, StoreError> {
    let rows = Array::new_with_length((items.len() * 2) as u32);
    for (i, (key, item)) in items.iter().enumerate() {
        let row: JsValue = match item {
            Some(item) => codec.keyed_row(key_field, prefix, key, item).await?.into(),
            None => JsValue::UNDEFINED,
        };
        rows.set(2 * i as u32, key.into());
        rows.set(2 * i as u32 + 1, row);
    }
    Ok(rows)
}

impl Store for IdbStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        let early = self.0.early_read.borrow_mut().take();
        let raw = match early {
            Some(raw) => {
                self.0.loaded_early.set(true);
                raw
            }
            // The identity is checked below, on whichever connection read the rows.
            None => {
                self.on_live_connection(false, |db| async move { load::read(db.as_sys()).await })
                    .await?
            }
        };
        // A fresh database in place of the replica's own holds a fraction of the data at
        // best: never hand it to the engine as the truth.
        if load::identity(&raw).as_deref() != Some(self.0.identity.borrow().as_str()) {
            return Err(self.lost(lost()));
        }
        let (state, outbox_rows) = load::decode(&raw, &self.0.codec).await?;
        // The engine never commits while it loads (both go through its commit pipeline),
        // so the rows read here are where this handle's own commits left the outbox.
        *self.0.outbox_rows.borrow_mut() = outbox_rows;
        Ok(state)
    }

    /// Reads the records of `keys` by key, not every row (see `readPart` in `commit.js`).
    async fn load_part(
        &self,
        keys: &std::collections::BTreeSet<(String, String)>,
    ) -> Result<StoredState, StoreError> {
        let wanted = Array::new_with_length(keys.len() as u32);
        for (i, (collection, id)) in keys.iter().enumerate() {
            wanted.set(i as u32, Array::of2(&collection.into(), &id.into()).into());
        }
        let raw = self
            .on_live_connection(false, |db| {
                let wanted = wanted.clone();
                async move { load::read_part(db.as_sys(), &wanted).await }
            })
            .await?;
        if load::identity(&raw).as_deref() != Some(self.0.identity.borrow().as_str()) {
            return Err(self.lost(lost()));
        }
        let (state, outbox_rows) = load::decode(&raw, &self.0.codec).await?;
        // As for a load: the rows read are where the commits left the outbox.
        *self.0.outbox_rows.borrow_mut() = outbox_rows;
        Ok(state)
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let result = self.write(batch, None).await;
        if result.is_ok() {
            self.0.commits.set(self.0.commits.get() + 1);
        }
        result.map_err(|e| self.lost(e))
    }

    fn set_role(&self, role: Role) {
        self.0.bases_are_mine.set(role.owns_bases());
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.on_live_connection(false, |db| async move { self.verify(&db).await })
            .await
    }

    /// Writes everything the replica holds into whatever database is there now (a fresh one
    /// after a wipe; or one another tab already re-created, whose rows are kept), under a
    /// new identity, in one transaction.
    async fn recreate(&self, everything: &WriteBatch) -> Result<(), StoreError> {
        let identity = crate::platform::random_hex(16);
        // The segments this handle knew are gone: every entry is written into new ones.
        let known = std::mem::take(&mut *self.0.outbox_rows.borrow_mut());
        let result = self.write(everything, Some(identity.clone())).await;
        match result {
            Ok(()) => {
                *self.0.identity.borrow_mut() = identity;
                self.0.commits.set(self.0.commits.get() + 1);
                let reason = self.0.lost_reason.borrow_mut().take().unwrap_or_else(|| {
                    "the database was deleted or replaced under the running tab".into()
                });
                self.0.recreations.borrow_mut().push(reason);
                // The rows were written with their index keys; the new database still needs
                // the signature saying so before its index answers first pages.
                let store = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let _ = store.keep_indexed().await;
                });
            }
            Err(_) => *self.0.outbox_rows.borrow_mut() = known,
        }
        result
    }
}

/// The identity of `db` (storing `fresh` when it has none and `fresh` is given).
async fn identity_of(db: &Database, fresh: Option<String>) -> Result<Option<String>, StoreError> {
    let found = JsFuture::from(database_identity(db.as_sys(), META, fresh))
        .await
        .map_err(|e| js_store_error("identity check", &e))?;
    Ok(found.as_string())
}

fn lost() -> StoreError {
    StoreError::Lost(
        "the database was deleted or replaced since this tab opened it (cleared, evicted or \
         deleted by another tab)"
            .into(),
    )
}

/// Maps an IndexedDB failure to a store error; a full disk is `QuotaExceeded`.
pub fn idb_error(what: &str, e: indexed_db_futures::error::Error) -> StoreError {
    store_error(&idb_error_name(&e), format!("IndexedDB {what} failed: {e}"))
}

/// The DOMException name of an IndexedDB failure (`""` when it has none).
pub fn idb_error_name(e: &indexed_db_futures::error::Error) -> String {
    match e {
        indexed_db_futures::error::Error::DomException(d) => {
            js_error_name(&JsValue::from(d.clone()))
        }
        indexed_db_futures::error::Error::Unknown(j) => js_error_name(j.as_ref()),
        _ => String::new(),
    }
}

/// [`idb_error`] for an error thrown or rejected by the JS side of the store.
pub fn js_store_error(what: &str, e: &JsValue) -> StoreError {
    let name = js_error_name(e);
    let detail = js_sys::Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_default();
    store_error(&name, format!("IndexedDB {what} failed: {name}: {detail}"))
}

fn store_error(name: &str, message: String) -> StoreError {
    match name {
        "QuotaExceededError" => StoreError::QuotaExceeded(message),
        // `UnknownError`: what Chromium's transactions fail with when it force-closes the
        // connection ("Connection is closing because of: Force close delete origin" when the
        // site's data is cleared). Like a dead connection, it is answered by reopening and
        // verifying the database (`reconnect.rs`), not by failing the write as storage
        // trouble while the database is in fact gone.
        //
        // `AbortError` with no other cause named: a transaction the browser aborted on its
        // own (Ferry's own aborts carry their reason, e.g. `StorageLostError`); Chromium
        // does this too when it clears the site's data. An aborted transaction wrote
        // nothing, so trying it once more on a verified connection is safe.
        "InvalidStateError" | "TransactionInactiveError" | "UnknownError" | "AbortError" => {
            StoreError::Unavailable(message)
        }
        "StorageLostError" => StoreError::Lost(message),
        _ => StoreError::Other(message),
    }
}

/// The meta key, for tests that inspect raw rows.
pub fn meta_key() -> &'static str {
    META_KEY
}
