//! Building `BTreeMap`s and `BTreeSet`s by insertion instead of `collect()`.
//!
//! Why: std's `FromIterator` for the B-tree collections first copies the input into a
//! `Vec`, stable-sorts it and de-duplicates it, then bulk-builds the tree. The sort is
//! instantiated once per element type (drift sort, quicksort, small sorts and merges:
//! 4–6 KB of WebAssembly each), and the browser engine collected some twenty element types
//! that way — about a tenth of the module. `Extend` inserts one item at a time and reuses
//! the `insert` every map already has. The result is the same map (a repeated key keeps
//! its last value, as with `collect()`).
//!
//! The price is speed on large inputs: inserting costs O(n log n) compares where
//! `collect()` of already-sorted input costs O(n). Measured natively (opt-level "s",
//! `(String, String)` keys in order, shared machine): 10,000 items 3.5–11 ms inserted vs
//! 0.6–2 ms collected; 100,000 items 92–140 ms vs 13–23 ms. So this is for the maps whose
//! size is what one commit changed or a small configuration; the replica's records at open
//! (every stored record) keep `collect()`.

use std::collections::{BTreeMap, BTreeSet};

/// `collect_btree_map()` / `collect_btree_set()` on any iterator: see the module docs.
pub trait CollectBTree: Iterator + Sized {
    /// The items as a map, inserted one by one (a repeated key keeps its last value).
    fn collect_btree_map<K: Ord, V>(self) -> BTreeMap<K, V>
    where
        Self: Iterator<Item = (K, V)>,
    {
        let mut map = BTreeMap::new();
        map.extend(self);
        map
    }

    /// The items as a set, inserted one by one.
    fn collect_btree_set(self) -> BTreeSet<Self::Item>
    where
        Self::Item: Ord,
    {
        let mut set = BTreeSet::new();
        set.extend(self);
        set
    }
}

impl<I: Iterator> CollectBTree for I {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_collect_including_repeated_keys() {
        let items = vec![(3, "c"), (1, "a"), (3, "last"), (2, "b")];
        let by_insert = items.clone().into_iter().collect_btree_map();
        let collected: BTreeMap<_, _> = items.into_iter().collect();
        assert_eq!(by_insert, collected);
        assert_eq!(by_insert[&3], "last");
        let set = [5, 1, 5, 3].into_iter().collect_btree_set();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![1, 3, 5]);
    }
}
