//! Which records changed since a watcher last looked: per collection, the ids of the
//! changed records, or "all of them" when they are not known one by one (a replica just
//! opened, or more changes than are worth listing). Live queries and indexes follow the ids
//! and are answered again for whole collections.

use crate::btree::CollectBTree;
use std::collections::BTreeSet;

/// More changed records of one collection than this are reported as "all of them": answering
/// its queries again is then cheaper than following each change.
pub const MAX_LISTED: usize = 50_000;

/// The records changed since the last take, per collection (`None`: all of them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sorted by collection, each collection once. A `Vec`, not a `BTreeMap`: an app has a
    /// few collections, and a map of this value type was used nowhere else, so it cost its
    /// own copy of the B-tree code in the WebAssembly module.
    by_collection: Vec<(String, Option<BTreeSet<String>>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.by_collection.is_empty()
    }

    fn find(&self, collection: &str) -> Result<usize, usize> {
        self.by_collection
            .binary_search_by(|(c, _)| c.as_str().cmp(collection))
    }

    /// The entry of `collection`, made with `fresh` when there is none.
    fn entry(
        &mut self,
        collection: &str,
        fresh: Option<BTreeSet<String>>,
    ) -> &mut Option<BTreeSet<String>> {
        let at = match self.find(collection) {
            Ok(at) => at,
            Err(at) => {
                self.by_collection
                    .insert(at, (collection.to_owned(), fresh));
                at
            }
        };
        &mut self.by_collection[at].1
    }

    /// Record `id` of `collection` changed.
    pub fn record(&mut self, collection: &str, id: &str) {
        let ids = self.entry(collection, Some(BTreeSet::new()));
        if let Some(list) = ids {
            list.insert(id.to_owned());
            if list.len() > MAX_LISTED {
                *ids = None;
            }
        }
    }

    /// Any record of `collection` may have changed.
    pub fn whole(&mut self, collection: &str) {
        *self.entry(collection, None) = None;
    }

    /// Whether anything of `collection` changed.
    pub fn touches(&self, collection: &str) -> bool {
        self.find(collection).is_ok()
    }

    /// The changed ids of `collection`; `None` when nothing changed or all may have.
    pub fn ids(&self, collection: &str) -> Option<&BTreeSet<String>> {
        let at = self.find(collection).ok()?;
        self.by_collection[at].1.as_ref()
    }

    /// Each changed collection with its changed ids (`None`: all of them), in collection
    /// order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, Option<&BTreeSet<String>>)> {
        self.by_collection.iter().map(|(c, ids)| (c, ids.as_ref()))
    }

    /// The changed collections.
    pub fn collections(&self) -> BTreeSet<String> {
        self.by_collection
            .iter()
            .map(|(c, _)| c.clone())
            .collect_btree_set()
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

    #[test]
    fn collections_come_in_order_each_once() {
        let mut c = Changes::default();
        c.record("tasks", "t1");
        c.whole("albums");
        c.record("notes", "n1");
        c.record("tasks", "t2");
        let listed: Vec<(&str, Option<usize>)> = c
            .iter()
            .map(|(name, ids)| (name.as_str(), ids.map(BTreeSet::len)))
            .collect();
        assert_eq!(
            listed,
            [("albums", None), ("notes", Some(1)), ("tasks", Some(2))]
        );
        assert_eq!(
            c.collections().into_iter().collect::<Vec<_>>(),
            ["albums", "notes", "tasks"]
        );
        assert!(c.ids("albums").is_none() && c.touches("albums"));
        assert!(!c.touches("zebras") && c.ids("zebras").is_none());
    }
}
