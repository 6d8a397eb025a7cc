//! The text merge's memory stays proportional to the texts: a 2,000-word replacement on one
//! side against a one-word edit on the other once allocated about 512 MB (a quadratic diff
//! trace). Measured with a counting allocator, so this test fails if that comes back.

use ferry_core::text_merge::merge_text;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_long_replacement_against_a_one_word_edit_merges_in_small_memory() {
    let base: String = (0..2_000).map(|i| format!("w{i} ")).collect();
    let server: String = (0..2_000).map(|i| format!("replaced{i} ")).collect();
    let local = base.replacen("w1999 ", "last ", 1);
    let region = Region::new(GLOBAL);
    let merged = merge_text(&base, &local, &server);
    let allocated = region.change().bytes_allocated;
    assert!(merged.is_err(), "both sides rewrote the last word");
    assert!(
        allocated < 8 * 1024 * 1024,
        "the merge allocated {allocated} bytes"
    );
}
