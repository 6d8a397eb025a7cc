//! Push sizing: batches are bounded by bytes as well as by count, under the limits the
//! server advertises (the protocol's defaults before it has spoken), narrowed by what a 413
//! taught. A mutation that can never fit, or that the server refuses as too large on its
//! own, becomes a dead letter with the reason, so it never blocks the writes behind it.

use super::Replica;
use crate::outbox::{BatchLimits, PUSH_ENVELOPE_BYTES};
use crate::protocol::{PushRequest, ServerLimits};

/// The error code of a change too large for any push.
pub const TOO_LARGE: &str = "too_large";

/// What this replica knows about how large a push may be.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PushLimits {
    advertised: Option<ServerLimits>,
    /// A body size a 413 showed is too large: later batches stay below it.
    refused_bytes: Option<usize>,
}

impl PushLimits {
    pub(super) fn current(&self) -> BatchLimits {
        let defaults = BatchLimits::default();
        let mut limits = match self.advertised {
            Some(l) => BatchLimits {
                max_mutations: usize::try_from(l.max_push_mutations)
                    .unwrap_or(usize::MAX)
                    .clamp(1, defaults.max_mutations),
                max_bytes: usize::try_from(l.max_push_bytes).unwrap_or(usize::MAX),
            },
            None => defaults,
        };
        if let Some(refused) = self.refused_bytes {
            limits.max_bytes = limits.max_bytes.min(refused.saturating_sub(1));
        }
        limits
    }
}

/// What happened to a batch the server refused as too large (HTTP 413).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TooLarge {
    /// The batch held several mutations: the next ones are smaller (no wait needed).
    Split { max_bytes: usize },
    /// The batch was one mutation: it became this dead letter.
    DeadLettered { letter_id: String },
}

impl Replica {
    /// Takes the limits a server answer advertised (an answer without them changes nothing).
    pub fn set_server_limits(&mut self, limits: Option<&ServerLimits>) {
        if let Some(l) = limits {
            if l.max_push_bytes > 0 && l.max_push_mutations > 0 {
                self.push_limits.advertised = Some(*l);
            }
        }
    }

    /// The limits the next batch is cut to.
    pub fn batch_limits(&self) -> BatchLimits {
        self.push_limits.current()
    }

    /// The server answered 413 to `req`: cut the next batches to half its size, or, if it
    /// was a single mutation, dead-letter that one so the writes behind it go on.
    pub fn on_push_too_large(&mut self, req: &PushRequest, now_ms: u64) -> TooLarge {
        if let [only] = req.mutations.as_slice() {
            let entry_id = self
                .outbox
                .values()
                .find(|e| e.sent.as_ref().is_some_and(|s| s.op_id == only.op_id))
                .map(|e| e.entry_id.clone());
            if let Some(entry) = entry_id.and_then(|id| self.remove_entry(&id)) {
                let letter_id = entry.entry_id.clone();
                let message = format!(
                    "the server refused this change as too large (HTTP 413; it is {} bytes \
                     encoded): make the record smaller and retry it",
                    entry.encoded_size()
                );
                self.dead_letter(entry, TOO_LARGE, &message, now_ms);
                return TooLarge::DeadLettered { letter_id };
            }
        }
        let size = serde_json::to_vec(req).map_or(usize::MAX, |v| v.len());
        let refused = self
            .push_limits
            .refused_bytes
            .unwrap_or(usize::MAX)
            .min(size);
        // Half the refused body, so a batch of two splits into two pushes of one.
        let next = (refused / 2).max(PUSH_ENVELOPE_BYTES + 1);
        self.push_limits.refused_bytes = Some(next + 1);
        TooLarge::Split { max_bytes: next }
    }

    /// Dead-letters unsent entries that even alone are larger than a push may be.
    pub(super) fn dead_letter_too_large(&mut self, ids: &[String], limits: BatchLimits) {
        let now_ms = self.meta.hlc.wall_ms;
        for id in ids {
            if let Some(entry) = self.remove_entry(id) {
                let message = format!(
                    "this change is about {} bytes encoded; the server takes at most {} bytes \
                     in one push: make the record smaller and retry it",
                    entry.encoded_size(),
                    limits.max_bytes
                );
                self.dead_letter(entry, TOO_LARGE, &message, now_ms);
            }
        }
    }
}
