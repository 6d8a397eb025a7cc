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
    /// Batches taken and not yet durable, by the number [`WriteUndo::seal`] gave them, in
    /// ascending order (numbers are handed out in ascending order, so a batch is pushed at
    /// the end). A sorted `Vec`, not a `BTreeMap<u64, _>`: a few batches are in flight at
    /// once, and that map type cost its own copy of the B-tree code in the WebAssembly module.
    sealed: RefCell<Vec<(u64, BTreeMap<Key, RecordImage>)>>,
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
            self.sealed.borrow_mut().push((batch, images));
        }
        batch
    }

    /// The batch is durable (or was replaced by a reload): its images are not needed.
    pub fn forget(&self, batch: u64) {
        let mut sealed = self.sealed.borrow_mut();
        if let Ok(at) = sealed.binary_search_by_key(&batch, |(b, _)| *b) {
            sealed.remove(at);
        }
    }

    /// Everything in memory is durable now (a re-creation stored the whole replica).
    pub fn forget_all(&self) {
        self.current.borrow_mut().clear();
        self.sealed.borrow_mut().clear();
    }

    /// The images that take memory back to before `batch`: for each record, the one from
    /// the earliest of `batch`, the batches after it and the writes not yet taken.
    pub fn take_from(&self, batch: u64) -> Vec<RecordImage> {
        let mut sealed = self.sealed.borrow_mut();
        let from = sealed.partition_point(|(b, _)| *b < batch);
        let mut later = sealed.split_off(from);
        let mut earliest = std::mem::take(&mut *self.current.borrow_mut());
        // Latest first, so an earlier batch's image of a record replaces a later one's.
        while let Some((_, images)) = later.pop() {
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

#[cfg(test)]
mod tests {
    use super::WriteUndo;
    use crate::policy::Policy;
    use crate::replica::{Change, RecordImage, Replica, ReplicaConfig, StoredState};

    fn titled(title: &str) -> Change {
        let serde_json::Value::Object(fields) = serde_json::json!({ "title": title }) else {
            unreachable!()
        };
        Change::Put(fields)
    }

    /// What an image would put back: the record's title, or `None` for no record.
    fn title_of(image: &RecordImage) -> Option<String> {
        let mut replica = Replica::open(
            StoredState::default(),
            ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]),
            || "c1".into(),
        );
        replica.restore_image(image.clone());
        let (collection, id) = image.key();
        replica
            .record(collection, id)
            .filter(|r| !r.state.deleted)
            .map(|r| r.state.fields["title"].as_str().unwrap().to_owned())
    }

    #[test]
    fn taking_back_from_a_batch_restores_the_earliest_image_of_each_record() {
        let mut replica = Replica::open(
            StoredState::default(),
            ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]),
            || "c1".into(),
        );
        let undo = WriteUndo::default();
        // Batch 1 writes `a` for the first time, batch 2 rewrites it, batch 3 writes `b`;
        // then `a` is written again, not yet in a batch.
        for (id, title) in [("a", "one"), ("a", "two"), ("b", "b-one")] {
            undo.note("notes", id, || replica.record_image("notes", id));
            replica.write("notes", id, titled(title), 1).unwrap();
            undo.seal();
        }
        undo.note("notes", "a", || replica.record_image("notes", "a"));
        replica.write("notes", "a", titled("three"), 1).unwrap();

        let titles = |images: Vec<RecordImage>| -> Vec<(String, Option<String>)> {
            images
                .iter()
                .map(|i| (i.key().1.to_owned(), title_of(i)))
                .collect()
        };
        // From batch 2: `a` as before batch 2 ("one"), `b` as before batch 3 (absent).
        assert_eq!(
            titles(undo.take_from(2)),
            [("a".into(), Some("one".into())), ("b".into(), None)]
        );
        // Batch 1 is still there; batches 2 and 3 and the unsealed writes were taken.
        assert_eq!(titles(undo.take_from(1)), [("a".into(), None)]);
        assert!(undo.take_from(1).is_empty());

        // A durable batch is forgotten: taking back from before it starts after it.
        for title in ["four", "five"] {
            undo.note("notes", "a", || replica.record_image("notes", "a"));
            replica.write("notes", "a", titled(title), 1).unwrap();
            undo.seal();
        }
        undo.forget(4);
        assert_eq!(
            titles(undo.take_from(1)),
            [("a".into(), Some("four".into()))]
        );
    }
}
