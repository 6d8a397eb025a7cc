//! The replica's side of collection priorities (`crate::priority`): each collection's
//! priority from the config, what waits per priority, and what a push names.

use super::{Replica, ReplicaConfig};
use crate::priority::{waiting, Priority};
use crate::protocol::PushRequest;

impl ReplicaConfig {
    /// A collection's priority (normal unless configured).
    pub fn priority(&self, collection: &str) -> Priority {
        self.priorities.get(collection).copied().unwrap_or_default()
    }
}

impl Replica {
    /// Outbox entries waiting per priority (critical, normal, background).
    pub fn waiting_by_priority(&self) -> [usize; 3] {
        waiting(self.outbox.values(), |c| self.config.priority(c))
    }

    /// The most urgent priority among a push's mutations (what `Ferry-Priority` says).
    pub fn push_priority(&self, req: &PushRequest) -> Priority {
        req.mutations
            .iter()
            .map(|m| self.config.priority(&m.collection))
            .min()
            .unwrap_or_default()
    }
}
