//! The IndexedDB schema and its versions.
//!
//! | version | object stores |
//! |---------|---------------|
//! | 1 | `records` (key `[c, i]`, index `by_collection` on `c`), `outbox` (key `e`), `meta` (key `k`) |
//! | 2 | version 1 plus `conflicts` (key `k`) and `dead_letters` (key `k`) |
//! | 3 | version 2 without the `by_collection` index (nothing read through it, and keeping it cost every record write an index update) |
//! | 4 | version 3 plus the multi-entry index `by_key` on `records.x`: the keys of the declared indexes each row carries (`ferry_core::query::stored`); a row without `x` is in no entry, so it costs nothing where no index is declared |
//!
//! Upgrades add stores and drop unused indexes, never touching a row, so every row of an
//! older version stays readable as it is; a version 1 database opens as version 3 with its
//! records and outbox intact. (The outbox's segmented rows of `outbox_rows.rs` live in the
//! same `outbox` store beside rows of the per-entry layout, so they needed no new version.)
//! Opening fails with a clear [`StoreError::Unavailable`] when another tab keeps an older
//! version open for longer than the timeout, instead of hanging.

use super::{idb_error, idb_error_name};
use ferry_core::ports::StoreError;
use futures::future::{select, Either};
use indexed_db_futures::database::Database;
use indexed_db_futures::internals::SystemRepr;
use indexed_db_futures::prelude::*;
use indexed_db_futures::KeyPath;

/// The schema version this build writes.
pub const VERSION: u32 = 4;

pub const RECORDS: &str = "records";
pub const BY_COLLECTION: &str = "by_collection";
/// The multi-entry index over every row's declared-index keys (version 4).
pub const BY_KEY: &str = "by_key";
pub const OUTBOX: &str = "outbox";
pub const META: &str = "meta";
pub const CONFLICTS: &str = "conflicts";
pub const DEAD_LETTERS: &str = "dead_letters";
/// Created and deleted within the upgrade to version 3 (see `upgrade`).
const SCRATCH: &str = "ferry_upgrade_scratch";

/// Every store a transaction may touch (versions 2 to 4).
pub const ALL_STORES: [&str; 5] = [RECORDS, OUTBOX, META, CONFLICTS, DEAD_LETTERS];

/// How long an open may stay blocked by another tab before it fails.
pub const DEFAULT_BLOCKED_TIMEOUT_MS: u32 = 10_000;

/// How long to wait before each new attempt when an open was aborted (see [`open`]).
const ABORTED_OPEN_RETRY_DELAYS_MS: [u32; 4] = [10, 50, 200, 500];

/// Opens (creating or upgrading) the database `name` at `version` (1 to 4; tests open older ones).
///
/// An open that the browser aborts (`AbortError: The connection was closed`) is tried again a
/// few times, shortly after: that is how Chromium answers an open issued while it clears the
/// site's data (the connection the open produced is force-closed with the rest), and the
/// same open succeeds a moment later on the emptied origin. Without the retry the write that
/// triggered the reopen was rolled back (tests/faults/02c). An open blocked by another tab is
/// not retried: it already waited `blocked_timeout_ms`.
pub async fn open(
    name: &str,
    version: u32,
    blocked_timeout_ms: u32,
) -> Result<Database, StoreError> {
    let mut delays = ABORTED_OPEN_RETRY_DELAYS_MS.iter();
    loop {
        match open_once(name, version, blocked_timeout_ms).await {
            Err(OpenFailure::Aborted(message)) => match delays.next() {
                Some(&ms) => gloo_timers::future::TimeoutFuture::new(ms).await,
                None => return Err(StoreError::Unavailable(message)),
            },
            Err(OpenFailure::Other(error)) => return Err(error),
            Ok(db) => return Ok(db),
        }
    }
}

/// Why one open attempt failed.
enum OpenFailure {
    /// The browser aborted the open request (worth another attempt).
    Aborted(String),
    Other(StoreError),
}

async fn open_once(
    name: &str,
    version: u32,
    blocked_timeout_ms: u32,
) -> Result<Database, OpenFailure> {
    let unavailable = |message| OpenFailure::Other(StoreError::Unavailable(message));
    let request = Database::open(name)
        .with_version(version)
        .with_on_blocked(|_| Ok(()))
        .with_on_upgrade_needed(move |event, db| {
            let old = event.old_version() as u32;
            upgrade(&db, old, version)
        })
        .build()
        .map_err(|e| unavailable(format!("cannot open IndexedDB database `{name}`: {e}")))?;
    let timeout = gloo_timers::future::TimeoutFuture::new(blocked_timeout_ms);
    match select(Box::pin(request), timeout).await {
        Either::Left((Ok(db), _)) => Ok(db),
        Either::Left((Err(e), _)) => {
            let message = format!("cannot open IndexedDB database `{name}`: {e}");
            let aborted = match &e {
                indexed_db_futures::error::OpenDbError::Base(base) => {
                    idb_error_name(base) == "AbortError"
                }
                _ => false,
            };
            Err(match aborted {
                true => OpenFailure::Aborted(message),
                false => unavailable(message),
            })
        }
        Either::Right((_, request)) => {
            // An open request cannot be cancelled: it stays queued and upgrades the database
            // once the other tab lets go. Dropping it would drop its upgrade handler too, and
            // the upgrade would then raise the version WITHOUT creating the new stores —
            // leaving a database no later open can use. So keep it alive, and close the
            // connection it finally yields.
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(db) = request.await {
                    db.close();
                }
            });
            Err(unavailable(format!(
                "opening IndexedDB database `{name}` was blocked for {blocked_timeout_ms} ms by another tab that keeps an \
                 older version open; close or reload the other tabs of this app"
            )))
        }
    }
}

fn upgrade(db: &Database, old: u32, new: u32) -> indexed_db_futures::Result<()> {
    if old < 1 {
        let records = db
            .create_object_store(RECORDS)
            .with_key_path(KeyPath::from(["c", "i"]))
            .build()?;
        if new < 3 {
            records
                .create_index(BY_COLLECTION, KeyPath::One("c"))
                .build()?;
        }
        if new >= 4 {
            records
                .create_index(BY_KEY, KeyPath::One("x"))
                .with_multi_entry(true)
                .build()?;
        }
        db.create_object_store(OUTBOX)
            .with_key_path(KeyPath::One("e"))
            .build()?;
        db.create_object_store(META)
            .with_key_path(KeyPath::One("k"))
            .build()?;
    }
    if old < 2 && new >= 2 {
        db.create_object_store(CONFLICTS)
            .with_key_path(KeyPath::One("k"))
            .build()?;
        db.create_object_store(DEAD_LETTERS)
            .with_key_path(KeyPath::One("k"))
            .build()?;
    }
    if (1..4).contains(&old) && new >= 3 {
        // IndexedDB hands out the upgrade's transaction only through an object store, and
        // the records store is not reachable from the database object: a scratch store
        // created (and deleted again) in this upgrade yields it.
        let scratch = db.create_object_store(SCRATCH).build()?;
        let tx = scratch.as_sys().transaction();
        let records = tx.object_store(RECORDS)?;
        if old < 3 {
            records.delete_index(BY_COLLECTION)?;
        }
        if new >= 4 {
            // The rows written before have no `x`: they join the index when re-indexed
            // (`IdbStore::keep_indexed`), and until then the stored signature says the
            // index does not answer queries.
            let params = web_sys::IdbIndexParameters::new();
            params.set_multi_entry(true);
            records.create_index_with_str_and_optional_parameters(BY_KEY, "x", &params)?;
        }
        db.delete_object_store(SCRATCH)?;
    }
    Ok(())
}

/// Maps an IndexedDB failure while opening to a store error.
pub fn open_error(e: indexed_db_futures::error::Error) -> StoreError {
    idb_error("open", e)
}
