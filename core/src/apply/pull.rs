//! The pull rule: which cursors may be served, how big a page is, what the answer says.

use crate::protocol::{limits, PullResponse, Record};

/// Why a pull is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullError {
    /// Tombstones older than the cursor were compacted away: resync from cursor 0 (HTTP 410).
    CursorExpired { horizon: u64 },
}

/// The pull rule (PROTOCOL.md §4), shared by every store: which cursors may be served, how
/// big a page is, and what the answer says. A store reads, in one snapshot, the tenant's head
/// and horizon, then (if [`PullPage::check`] allows) the first [`PullPage::limit`] records
/// whose last change is after the cursor, in log order, and how many more follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullPage {
    pub cursor: u64,
    /// The page size actually served: the request's, clamped to 1..=MAX_PULL_LIMIT.
    pub limit: u32,
}

impl PullPage {
    pub fn new(cursor: u64, limit: u32) -> Self {
        PullPage {
            cursor,
            limit: limit.clamp(1, limits::MAX_PULL_LIMIT),
        }
    }

    /// A cursor behind the compaction horizon (other than 0, the snapshot) has expired.
    pub fn check(&self, horizon: u64) -> Result<(), PullError> {
        if self.cursor != 0 && self.cursor < horizon {
            return Err(PullError::CursorExpired { horizon });
        }
        Ok(())
    }

    /// The answer: the next cursor is the last change's position (a record's version is its
    /// position), or the request's cursor raised to the horizon when the page is empty.
    pub fn answer(
        &self,
        changes: Vec<Record>,
        remaining: u64,
        head: u64,
        horizon: u64,
    ) -> PullResponse {
        let cursor = changes
            .last()
            .map_or(self.cursor.max(horizon), |r| r.version);
        PullResponse {
            changes,
            cursor,
            has_more: remaining > 0,
            remaining,
            head,
            ..PullResponse::default()
        }
    }
}
