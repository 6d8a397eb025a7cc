//! Storage lost under a running replica (the database was deleted by another tab, evicted,
//! or cleared with the site's data): the replica in memory is then the only complete copy of
//! what the app was told is saved, so the engine writes all of it into the storage that is
//! there now ([`Store::recreate`]) instead of reloading a fresh, partial database.
//!
//! The cursor is reset first (a full resync, as after a compacted cursor): the rewritten
//! database then converges with the server on the next pull, whatever the wipe left behind.
//! The store adapter, which saw why the storage was lost, tells the app (in the browser: the
//! `storage-lost` outcome and `syncState.storageLost`).

use super::Engine;
use crate::btree::CollectBTree;
use crate::error::CoreError;
use crate::ports::{Clock, Entropy, Store, StoreError, TokenSource, Transport};
use crate::replica::{Replica, WriteBatch};

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// Re-creates the lost storage from the replica (see the module docs). The caller holds
    /// a place in the commit pipeline.
    pub(super) async fn recreate_store(&self, _reason: String) -> Result<(), StoreError> {
        let everything = {
            let mut r = self.replica.borrow_mut();
            r.on_cursor_expired();
            // Everything unsaved is in the snapshot below.
            let _ = r.take_writes();
            everything(&r)
        };
        self.store.recreate(&everything).await?;
        *self.committed.borrow_mut() = super::Committed::Everything;
        // The whole replica is durable now: no write of it needs taking back.
        self.undo.forget_all();
        Ok(())
    }

    /// Checks that the storage still is the replica's own, and re-creates it from the
    /// replica when it is not (call when the platform says the storage changed under the
    /// app, e.g. IndexedDB's `close` or `versionchange`). `Ok(true)`: it was re-created.
    pub async fn check_storage(&self) -> Result<bool, CoreError> {
        let place = self.commits.enter();
        place.turn().await;
        match self.store.check().await {
            Ok(()) => Ok(false),
            Err(StoreError::Lost(reason)) => {
                self.recreate_store(reason).await?;
                Ok(true)
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The whole replica as one batch of puts.
fn everything(r: &Replica) -> WriteBatch {
    WriteBatch {
        meta: Some(r.meta().clone()),
        records: r
            .all_records()
            .map(|rec| ((rec.collection.clone(), rec.id.clone()), Some(rec.clone())))
            .collect_btree_map(),
        outbox: r
            .outbox()
            .map(|e| (e.entry_id.clone(), Some(e.clone())))
            .collect_btree_map(),
        conflicts: r
            .conflicts()
            .map(|c| (c.conflict_id.clone(), Some(c.clone())))
            .collect_btree_map(),
        dead_letters: r
            .dead_letters()
            .map(|d| (d.letter_id.clone(), Some(d.clone())))
            .collect_btree_map(),
    }
}
