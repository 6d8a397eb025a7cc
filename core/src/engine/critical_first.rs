//! A first sync's critical-first pass: before the full pull from cursor 0, the engine pulls
//! only the critical collections (`collections=`, PROTOCOL.md §4) to their end, so what the
//! app marked critical is usable before the rest of a large first download arrives.
//!
//! The pass is a head start, not a second sync path: its cursor lives only for the pass,
//! its pages fold records in without moving the replica's one cursor, and the full pass
//! from 0 that follows (resumable page by page, as before) sees every record again — the
//! critical ones already folded are skipped by version. So nothing about the cursor, the
//! resync after compaction or a server rollback changes meaning (ARCHITECTURE.md,
//! "A first sync pulls critical collections first").

use super::cycle::{storage_failure, Request, Response};
use super::*;

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// Runs the critical-first pass when the replica is at cursor 0 and has critical and
    /// other collections. Returns whether a server rollback was noted on the way (the full
    /// pass then restores, and must not meet a second one in the same cycle). A failure of
    /// the network or the server ends the cycle as any pull failure does; a cursor expiring
    /// mid-pass (compaction raced it) only ends the pass: the full pass follows anyway.
    pub(super) async fn pull_critical_first(&self, trace: &str) -> Result<bool, (Failure, String)> {
        let Some(critical) = self.replica.borrow().critical_first() else {
            return Ok(false);
        };
        let limit = self.replica.borrow().config().pull_limit;
        let mut cursor = 0u64;
        loop {
            let meta = RequestMeta {
                view: self.replica.borrow().meta().view.clone(),
                collections: critical.clone(),
                ..self.meta(trace, String::new())
            };
            let sent_at = self.clock.now_ms();
            match self.request(Request::Pull(cursor, limit), meta).await {
                Ok(Response::Pull(page)) => {
                    let check = self.check_pull_page(
                        cursor,
                        limit,
                        &page,
                        (sent_at, self.clock.now_ms()),
                        false,
                    )?;
                    if let checks::PageCheck::RestartFromZero = check {
                        self.commit().await.map_err(storage_failure)?;
                        return Ok(true);
                    }
                    {
                        let mut p = self.progress.borrow_mut();
                        p.pulled = p.pulled.saturating_add(page.changes.len() as u64);
                    }
                    self.replica
                        .borrow_mut()
                        .on_priority_page(&page, self.clock.now_ms());
                    self.commit().await.map_err(storage_failure)?;
                    if !page.has_more {
                        return Ok(false);
                    }
                    cursor = page.cursor;
                }
                Ok(Response::Push(_)) => unreachable!("a pull answers with a pull response"),
                Err(TransportError::CursorExpired) => return Ok(false),
                Err(error) => return Err(classify(&error)),
            }
        }
    }
}
