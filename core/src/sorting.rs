//! One stable sort for the whole engine: [`sort_stable_by`].
//!
//! Why: `slice::sort_by` is instantiated once per element type *and* per comparator
//! closure (every closure is its own type), and each instantiation is 4–6 KB of
//! WebAssembly (drift sort, quicksort, small sorts, merges). The engine sorts a handful of
//! small-to-medium lists (query rows, an outbox's entries, push candidates, clock stamps,
//! metric samples), so it sorts the *positions* of the items instead: one `sort_by` over
//! `usize` with a `dyn` comparator, shared by every caller, then the items are moved into
//! that order. The price is an indirect call per comparison and one `usize` per item, small
//! next to what the comparators themselves do (string and JSON value compares).
//!
//! (The B-tree collections' own `collect()` sorts internally and is not covered: see
//! `btree.rs`.)

use std::cmp::Ordering;

/// Sorts `items` by `cmp`, keeping the order of equal items (a stable sort).
pub fn sort_stable_by<T>(items: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    sort_positions(&mut order, &mut |a, b| cmp(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().map(|at| {
        slots[at]
            .take()
            .expect("a sort order names each position once")
    }));
}

/// The one instantiation of the standard library's stable sort (see the module docs).
#[inline(never)]
fn sort_positions(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    order.sort_by(|a, b| cmp(*a, *b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_stable_sort() {
        // A small generator, so the lists cover ties, runs and reversed stretches.
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for len in [0usize, 1, 2, 3, 17, 20, 64, 500, 2_000] {
            let items: Vec<(u32, usize)> = (0..len).map(|i| (next() % 13, i)).collect();
            // By the first field only: the second (the original position) shows stability.
            let by_key = |a: &(u32, usize), b: &(u32, usize)| a.0.cmp(&b.0);
            let mut ours = items.clone();
            sort_stable_by(&mut ours, by_key);
            let mut std_sorted = items;
            std_sorted.sort_by(by_key);
            assert_eq!(ours, std_sorted, "length {len}");
        }
    }

    #[test]
    fn moves_owned_items_without_cloning() {
        let mut names = vec![
            String::from("pear"),
            String::from("apple"),
            String::from("fig"),
        ];
        sort_stable_by(&mut names, |a, b| a.len().cmp(&b.len()));
        assert_eq!(names, ["fig", "pear", "apple"]);
    }
}
