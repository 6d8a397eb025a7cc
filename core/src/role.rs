//! The role of one replica among the tabs (or processes) sharing its store: the single fact
//! from which "does this replica coalesce its outbox" and "is this writer the only one that
//! advances record bases" both derive.
//!
//! Exactly one replica per store leads: it pushes, pulls and rewrites outbox entries. The
//! others follow: they write append-only, so a leader freezing entries at the same moment
//! never loses their edit, and their commits keep a newer stored base rather than
//! overwriting it (only the leader pulls, so only it may hold the newest base).

/// Leader or follower; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

impl Role {
    pub fn is_leader(self) -> bool {
        self == Role::Leader
    }

    /// Whether local writes fold into unsent outbox entries (only the leader rewrites them).
    pub fn coalesces(self) -> bool {
        self.is_leader()
    }

    /// Whether no other writer can store a newer record base than this one holds, so its
    /// commits may skip reading the stored base first.
    pub fn owns_bases(self) -> bool {
        self.is_leader()
    }
}
