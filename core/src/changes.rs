//! Which records changed since a watcher last looked: per collection, the ids of the
//! changed records, or "all of them" when they are not known one by one (a replica just
//! opened, or more changes than are worth listing). Live queries and indexes follow the ids
//! and are answered again for whole collections.

use crate::btree::CollectBTree;
use std::collections::{BTreeMap, BTreeSet};

/// More changed records of one collection than this are reported as "all of them": answering
/// its queries again is then cheaper than following each change.
pub const MAX_LISTED: usize = 50_000;

/// The records changed since the last take, per collection (`None`: all of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    by_collection: BTreeMap<String, Option<BTreeSet<String>>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.by_collection.is_empty()
    }

    /// Record `id` of `collection` changed.
    pub fn record(&mut self, collection: &str, id: &str) {
        let ids = self
            .by_collection
            .entry(collection.to_owned())
            .or_insert_with(|| Some(BTreeSet::new()));
        if let Some(list) = ids {
            list.insert(id.to_owned());
            if list.len() > MAX_LISTED {
                *ids = None;
            }
        }
    }

    /// Any record of `collection` may have changed.
    pub fn whole(&mut self, collection: &str) {
        self.by_collection.insert(collection.to_owned(), None);
    }

    /// Whether anything of `collection` changed.
    pub fn touches(&self, collection: &str) -> bool {
        self.by_collection.contains_key(collection)
    }

    /// The changed ids of `collection`; `None` when nothing changed or all may have.
    pub fn ids(&self, collection: &str) -> Option<&BTreeSet<String>> {
        self.by_collection.get(collection).and_then(Option::as_ref)
    }

    /// Each changed collection with its changed ids (`None`: all of them).
    pub fn iter(&self) -> impl Iterator<Item = (&String, Option<&BTreeSet<String>>)> {
        self.by_collection.iter().map(|(c, ids)| (c, ids.as_ref()))
    }

    /// The changed collections.
    pub fn collections(&self) -> BTreeSet<String> {
        self.by_collection.keys().cloned().collect_btree_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_listed_until_there_are_too_many() {
        let mut c = Changes::default();
        c.record("notes", "a");
        c.record("notes", "b");
        assert_eq!(c.ids("notes").map(BTreeSet::len), Some(2));
        assert!(c.touches("notes") && !c.touches("tasks"));
        for i in 0..=MAX_LISTED {
            c.record("tasks", &i.to_string());
        }
        assert!(c.touches("tasks") && c.ids("tasks").is_none());
        c.whole("notes");
        c.record("notes", "c");
        assert!(c.ids("notes").is_none(), "once whole, stays whole");
    }
}
