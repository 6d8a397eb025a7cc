//! Before-images of single records, so a local write can be taken back out of memory when
//! there is no stored state to reload instead: the storage was lost under the replica and
//! re-creating it failed (see ferry-core's `engine/undo.rs`). An image is one record as it
//! was and the outbox entries that described it; restoring puts both back exactly.

use super::{key, Key, LocalRecord, Replica};
use crate::outbox::OutboxEntry;

/// One record and its outbox entries as they were before a write.
#[derive(Clone, Debug)]
pub struct RecordImage {
    key: Key,
    record: Option<LocalRecord>,
    entries: Vec<OutboxEntry>,
}

impl RecordImage {
    /// The record's `(collection, id)`.
    pub fn key(&self) -> (&str, &str) {
        (&self.key.0, &self.key.1)
    }
}

impl Replica {
    /// The record `collection/id` and its outbox entries as they are now.
    pub fn record_image(&self, collection: &str, id: &str) -> RecordImage {
        let k = key(collection, id);
        RecordImage {
            record: self.records.get(&k).cloned(),
            entries: self.entries_of(&k).into_iter().cloned().collect(),
            key: k,
        }
    }

    /// Puts a record and its outbox entries back as `image` holds them (entries made since
    /// are removed). The change is marked unsaved like any other.
    pub fn restore_image(&mut self, image: RecordImage) {
        let k = image.key;
        let now: Vec<String> = self.entries_by_record.get(&k).cloned().unwrap_or_default();
        for entry_id in now {
            self.remove_entry(&entry_id);
        }
        for entry in image.entries {
            self.insert_entry(entry);
        }
        match image.record {
            Some(record) => self.records.insert(k.clone(), record),
            None => self.records.remove(&k),
        };
        self.touch_record(&k);
    }
}
