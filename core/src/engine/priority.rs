//! The engine's side of collection priorities (`crate::priority`): what the platform says
//! about the link, the last push round trip, and from both and the sync state whether the
//! network counts as poor — which decides whether background writes wait.

use super::Engine;
use crate::ports::{Clock, Entropy, Store, TokenSource, Transport};
use crate::priority::{is_degraded, LinkHints};

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// What the platform says about the connection now (save-data, metered).
    pub fn set_link_hints(&self, hints: LinkHints) {
        self.link.borrow_mut().hints = hints;
    }

    /// Whether the network counts as poor now (background writes then wait for critical ones).
    pub fn is_degraded(&self) -> bool {
        let link = *self.link.borrow();
        is_degraded(&self.state.borrow(), link.hints, link.last_round_trip_ms)
    }

    /// Outbox entries waiting per priority (critical, normal, background).
    pub fn waiting_by_priority(&self) -> [usize; 3] {
        self.replica.borrow().waiting_by_priority()
    }

    /// Notes how long the last push took to be answered.
    pub(super) fn note_round_trip(&self, ms: u64) {
        self.link.borrow_mut().last_round_trip_ms = Some(ms);
    }
}

/// What the engine knows about its link.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Link {
    pub hints: LinkHints,
    pub last_round_trip_ms: Option<u64>,
}
