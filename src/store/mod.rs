//! The IndexedDB store: [`ferry_core::ports::Store`] for the browser.
//!
//! `commit` first encodes (and, with a key, encrypts) the whole batch, then writes it in ONE
//! readwrite transaction in which nothing but IndexedDB requests is awaited. The commit
//! contract that makes tabs sharing one database safe is kept inside that transaction:
//! - meta: the larger of the stored and the new `next_seq` and clock is kept;
//! - records: a record's base version never goes backwards (a newer stored base is kept).
//!
//! Commits run one after another; [`IdbStore::barrier`] waits for every commit started
//! before it. A `versionchange` from another tab closes the database; the next use reopens it.

mod load;
pub mod rows;
pub mod schema;

use crate::crypto::Cipher;
use crate::platform::js_error_name;
use ferry_core::ports::{Store, StoreError};
use ferry_core::replica::{StoredState, WriteBatch};
use indexed_db_futures::database::Database;
use indexed_db_futures::internals::SystemRepr;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use js_sys::{Array, Function, Object, Promise};
use rows::{get, merge_meta, meta_row, read_meta, set, Codec, META_KEY};
use schema::{ALL_STORES, CONFLICTS, DEAD_LETTERS, META, OUTBOX, RECORDS};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

struct Inner {
    name: String,
    codec: Codec,
    blocked_timeout_ms: u32,
    db: RefCell<Option<Database>>,
    on_version_change: RefCell<Option<Closure<dyn FnMut()>>>,
    /// Resolves when the latest commit has finished.
    tail: RefCell<Promise>,
    commits: Cell<u64>,
    in_flight: Cell<u32>,
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
            tail: RefCell::new(Promise::resolve(&JsValue::UNDEFINED)),
            commits: Cell::new(0),
            in_flight: Cell::new(0),
        }));
        store.db().await?;
        Ok(store)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// How many commits succeeded through this handle.
    pub fn commit_count(&self) -> u64 {
        self.0.commits.get()
    }

    /// Whether a commit is under way.
    pub fn is_committing(&self) -> bool {
        self.0.in_flight.get() > 0
    }

    /// Waits until every commit started before this call has finished.
    pub async fn barrier(&self) {
        let tail = self.0.tail.borrow().clone();
        let _ = JsFuture::from(tail).await;
    }

    /// Closes the connection; the next use reopens it.
    pub fn close(&self) {
        if let Some(db) = self.0.db.borrow_mut().take() {
            db.as_sys().set_onversionchange(None);
            db.close();
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
            // Another tab wants to upgrade: let it, and reopen on next use.
            if let Some(inner) = weak.upgrade() {
                if let Some(db) = inner.db.borrow_mut().take() {
                    db.close();
                }
            }
        });
        db.as_sys()
            .set_onversionchange(Some(on_change.as_ref().unchecked_ref()));
        *self.0.on_version_change.borrow_mut() = Some(on_change);
        *self.0.db.borrow_mut() = Some(db.clone());
        Ok(db)
    }

    /// Encodes the batch, then writes it in one transaction.
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let codec = &self.0.codec;
        let mut records = Vec::new();
        for ((collection, id), record) in &batch.records {
            let row = match record {
                Some(r) => Some(codec.record_row(r).await?),
                None => None,
            };
            records.push((Array::of2(&collection.into(), &id.into()), row));
        }
        let outbox = keyed(codec, "e", "outbox", &batch.outbox).await?;
        let conflicts = keyed(codec, "k", "conflict", &batch.conflicts).await?;
        let dead = keyed(codec, "k", "dead-letter", &batch.dead_letters).await?;

        let db = self.db().await?;
        let tx = db
            .transaction(ALL_STORES)
            .with_mode(TransactionMode::Readwrite)
            .build()
            .map_err(|e| idb_error("commit", e))?;
        let err = |e| idb_error("commit", e);
        // Every request is issued before any is awaited: a transaction runs its requests in
        // order, so pipelining keeps the semantics and costs one round trip per phase instead
        // of one per request. Phase 1 reads what the multi-tab contract needs (the stored meta,
        // the stored bases); phase 2 writes everything; then the transaction commits.
        let meta_store = tx.object_store(META).map_err(err)?;
        let record_store = tx.object_store(RECORDS).map_err(err)?;
        let meta_read = match &batch.meta {
            Some(_) => Some(meta_store.get(META_KEY).primitive().map_err(err)?),
            None => None,
        };
        let mut base_reads = Vec::with_capacity(records.len());
        for (key, row) in &records {
            if row.is_some() {
                base_reads.push(Some(
                    record_store.get(key.clone()).primitive().map_err(err)?,
                ));
            } else {
                base_reads.push(None);
            }
        }
        let stored_meta: Option<JsValue> = match meta_read {
            Some(read) => read.await.map_err(err)?,
            None => None,
        };
        let mut stored_bases = Vec::with_capacity(base_reads.len());
        for read in base_reads {
            let stored: Option<JsValue> = match read {
                Some(read) => read.await.map_err(err)?,
                None => None,
            };
            stored_bases.push(stored);
        }

        let mut writes = Vec::new();
        if let Some(meta) = &batch.meta {
            let stored = stored_meta.map(|row| read_meta(&row)).transpose()?;
            writes.push(
                meta_store
                    .put(meta_row(&merge_meta(stored, meta)))
                    .primitive()
                    .map_err(err)?,
            );
        }
        for ((key, row), stored) in records.into_iter().zip(stored_bases) {
            writes.push(match row {
                Some(row) => {
                    keep_newer_base(stored.as_ref(), &row);
                    record_store.put(row).primitive().map_err(err)?
                }
                None => record_store.delete(key).primitive().map_err(err)?,
            });
        }
        for (name, rows) in [
            (OUTBOX, outbox),
            (CONFLICTS, conflicts),
            (DEAD_LETTERS, dead),
        ] {
            let store = tx.object_store(name).map_err(err)?;
            for (key, row) in rows {
                writes.push(match row {
                    Some(row) => store.put(row).primitive().map_err(err)?,
                    None => store.delete(key).primitive().map_err(err)?,
                });
            }
        }
        for write in writes {
            write.await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }
}

/// Keeps a stored base that is newer than the one being written.
fn keep_newer_base(stored: Option<&JsValue>, row: &Object) {
    let Some(stored) = stored else { return };
    let stored_bv = get(stored, "bv").as_f64().unwrap_or(0.0);
    if stored_bv > get(row, "bv").as_f64().unwrap_or(0.0) {
        set(row, "bv", &JsValue::from_f64(stored_bv));
        set(row, "b", &get(stored, "b"));
    }
}

type Rows = Vec<(String, Option<Object>)>;

async fn keyed<T: serde::Serialize>(
    codec: &Codec,
    key_field: &str,
    prefix: &str,
    items: &std::collections::BTreeMap<String, Option<T>>,
) -> Result<Rows, StoreError> {
    let mut rows = Vec::with_capacity(items.len());
    for (key, item) in items {
        let row = match item {
            Some(item) => Some(codec.keyed_row(key_field, prefix, key, item).await?),
            None => None,
        };
        rows.push((key.clone(), row));
    }
    Ok(rows)
}

impl Store for IdbStore {
    async fn load(&self) -> Result<StoredState, StoreError> {
        let db = self.db().await?;
        load::load(&db, &self.0.codec).await
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        // Chain behind the previous commit, so commits finish in the order they started.
        let previous = self.0.tail.borrow().clone();
        let mut done: Option<Function> = None;
        let mine = Promise::new(&mut |resolve, _| done = Some(resolve));
        *self.0.tail.borrow_mut() = mine;
        self.0.in_flight.set(self.0.in_flight.get() + 1);
        let _ = JsFuture::from(previous).await;
        let result = self.write(batch).await;
        self.0.in_flight.set(self.0.in_flight.get() - 1);
        if result.is_ok() {
            self.0.commits.set(self.0.commits.get() + 1);
        }
        if let Some(done) = done {
            let _ = done.call0(&JsValue::UNDEFINED);
        }
        result
    }
}

/// Maps an IndexedDB failure to a store error; a full disk is `QuotaExceeded`.
pub fn idb_error(what: &str, e: indexed_db_futures::error::Error) -> StoreError {
    let name = match &e {
        indexed_db_futures::error::Error::DomException(d) => {
            js_error_name(&JsValue::from(d.clone()))
        }
        indexed_db_futures::error::Error::Unknown(j) => js_error_name(j.as_ref()),
        _ => String::new(),
    };
    let message = format!("IndexedDB {what} failed: {e}");
    match name.as_str() {
        "QuotaExceededError" => StoreError::QuotaExceeded(message),
        "InvalidStateError" | "TransactionInactiveError" => StoreError::Unavailable(message),
        _ => StoreError::Other(message),
    }
}

/// The meta key, for tests that inspect raw rows.
pub fn meta_key() -> &'static str {
    META_KEY
}
