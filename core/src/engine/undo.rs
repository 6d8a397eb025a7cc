//! Taking local writes back out of memory when there is no stored state to reload.
//!
//! A failed commit normally rolls memory back by reloading the replica from the store. When
//! the storage was lost under the replica and re-creating it from the replica failed too
//! (storage refused outright), there is nothing to reload: the store holds none of this
//! replica's data. Left as it was, the write that found the loss stayed visible though its
//! `put()` was rejected. So the engine keeps, for every record a local write touches, the
//! record and its outbox entries as they were before the first write of each batch (a
//! [`RecordImage`]); when such a batch cannot be stored anywhere, the images of it and of
//! every later write are restored, and those writes are rejected as rolled back. Everything
//! written before stays in memory, outbox included: it is the only copy left, and the next
//! commit tries the re-creation again with it.
//!
//! Images are dropped as soon as their batch is durable, so this holds at most the records of
//! the commits in flight. Conflict and dead-letter actions ([`Engine::act`]) keep no images.

use super::commit::Place;
use super::Engine;
use crate::error::{CoreError, ErrorCode};
use crate::ports::{Clock, Entropy, Store, StoreError, TokenSource, Transport};
use crate::replica::RecordImage;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

type Key = (String, String);

/// The before-images of the writes not yet durable, per batch.
#[derive(Default)]
pub(super) struct WriteUndo {
    sealed_batches: Cell<u64>,
    /// Writes not yet taken into a batch.
    current: RefCell<BTreeMap<Key, RecordImage>>,
    /// Batches taken and not yet durable, by the number [`WriteUndo::seal`] gave them.
    sealed: RefCell<BTreeMap<u64, BTreeMap<Key, RecordImage>>>,
}

impl WriteUndo {
    /// Keeps the image of `collection/id` before a write, unless this batch already has one.
    pub fn note(&self, collection: &str, id: &str, image: impl FnOnce() -> RecordImage) {
        let key = (collection.to_owned(), id.to_owned());
        self.current.borrow_mut().entry(key).or_insert_with(image);
    }

    /// The writes so far were taken into a batch: returns its number.
    pub fn seal(&self) -> u64 {
        let batch = self.sealed_batches.get() + 1;
        self.sealed_batches.set(batch);
        let images = std::mem::take(&mut *self.current.borrow_mut());
        if !images.is_empty() {
            self.sealed.borrow_mut().insert(batch, images);
        }
        batch
    }

    /// The batch is durable (or was replaced by a reload): its images are not needed.
    pub fn forget(&self, batch: u64) {
        self.sealed.borrow_mut().remove(&batch);
    }

    /// Everything in memory is durable now (a re-creation stored the whole replica).
    pub fn forget_all(&self) {
        self.current.borrow_mut().clear();
        self.sealed.borrow_mut().clear();
    }

    /// The images that take memory back to before `batch`: for each record, the one from
    /// the earliest of `batch`, the batches after it and the writes not yet taken.
    pub fn take_from(&self, batch: u64) -> Vec<RecordImage> {
        let mut later = self.sealed.borrow_mut().split_off(&batch);
        let mut earliest = std::mem::take(&mut *self.current.borrow_mut());
        while let Some((_, images)) = later.pop_last() {
            earliest.extend(images);
        }
        earliest.into_values().collect()
    }
}

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// The storage was lost and re-creating it failed with `error`: takes the writes of
    /// `batch` and after back out of memory (see the module docs), moves the pipeline to a
    /// new generation so they are reported as rolled back, and says so in the error.
    pub(super) fn roll_back_unstorable(
        &self,
        place: &Place<'_>,
        batch: u64,
        error: StoreError,
    ) -> CoreError {
        self.take_back_writes(place, batch);
        CoreError::new(
            ErrorCode::StorageLost,
            format!(
                "the database was lost and re-creating it failed ({error}); the write was \
                 rolled back"
            ),
        )
    }

    /// Takes the writes of `batch` and after back out of memory and moves the pipeline to a
    /// new generation, so they are rejected as rolled back: for when no stored state could
    /// be read to replace memory with.
    pub(super) fn take_back_writes(&self, place: &Place<'_>, batch: u64) {
        let images = self.undo.take_from(batch);
        {
            let mut replica = self.replica.borrow_mut();
            for image in images {
                replica.restore_image(image);
            }
        }
        place.roll_back();
    }
}
