//! What this engine's commits wrote, for the other writers over the same store, and taking
//! in what theirs wrote. A browser tab that commits tells the other tabs the keys of the
//! records it stored ([`Engine::take_committed`]); they re-read just those
//! ([`Engine::refresh`], `replica/refresh.rs`) instead of reloading everything stored.

use super::Engine;
use crate::error::CoreError;
use crate::ports::{Clock, Entropy, Store, StoreError, TokenSource, Transport};
use crate::role::Role;
use std::collections::BTreeSet;

/// Most record keys one notice names; past that, the others reload everything (a first
/// pull of a large collection, a re-created database), which costs them no more than the
/// keys would.
pub const MAX_COMMITTED_KEYS: usize = 10_000;

/// The records this engine's commits wrote since the last [`Engine::take_committed`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Committed {
    /// These records (the meta, outbox, conflicts and dead letters are re-read whole anyway).
    Keys(BTreeSet<(String, String)>),
    /// Too many to name, or the whole store was rewritten: reload everything.
    #[default]
    Everything,
}

impl Committed {
    /// No record written yet.
    pub fn none() -> Committed {
        Committed::Keys(BTreeSet::new())
    }

    /// Adds what another notice named.
    pub fn merge(&mut self, other: Committed) {
        match (&mut *self, other) {
            (Committed::Everything, _) => {}
            (_, Committed::Everything) => *self = Committed::Everything,
            (Committed::Keys(mine), Committed::Keys(theirs)) => {
                mine.extend(theirs);
                if mine.len() > MAX_COMMITTED_KEYS {
                    *self = Committed::Everything;
                }
            }
        }
    }

    pub(super) fn add<'a>(&mut self, keys: impl Iterator<Item = &'a (String, String)>) {
        if let Committed::Keys(mine) = self {
            mine.extend(keys.cloned());
            if mine.len() > MAX_COMMITTED_KEYS {
                *self = Committed::Everything;
            }
        }
    }
}

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// What this engine's commits wrote since the last call: what the other writers over
    /// the same store must re-read.
    pub fn take_committed(&self) -> Committed {
        std::mem::replace(&mut *self.committed.borrow_mut(), Committed::none())
    }

    /// Takes in what another writer committed, taking `role` at the same moment: the records
    /// `committed` names are re-read (everything is, for [`Committed::Everything`]). Like
    /// [`Engine::reload`], `Ok(false)`: nothing done, because local changes are unsaved or
    /// a commit or sync cycle is under way; try again later.
    pub async fn refresh(&self, role: Role, committed: &Committed) -> Result<bool, CoreError> {
        let keys = match committed {
            Committed::Everything => return self.reload(role).await,
            Committed::Keys(keys) => keys,
        };
        if self.is_busy() {
            return Ok(false);
        }
        let place = self.commits.enter();
        place.turn().await;
        let stored = match self.store.load_part(keys).await {
            Ok(stored) => stored,
            Err(StoreError::Lost(reason)) => {
                return self
                    .recreate_store(reason)
                    .await
                    .map(|()| true)
                    .map_err(Into::into)
            }
            Err(error) => return Err(error.into()),
        };
        if self.is_busy_besides(place.has_followers()) {
            return Ok(false);
        }
        self.replica.borrow_mut().refresh(stored, keys);
        self.set_role(role);
        Ok(true)
    }
}
