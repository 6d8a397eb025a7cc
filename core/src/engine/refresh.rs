//! What this engine's commits wrote, for the other writers over the same store, and taking
//! in what theirs wrote. A browser tab that commits tells the other tabs the keys of the
//! records it stored ([`Engine::take_committed`]); they re-read just those
//! ([`Engine::refresh`], `replica/refresh.rs`) instead of reloading everything stored.

use super::Engine;
use crate::error::CoreError;
use crate::ports::{Clock, Entropy, Store, StoreError, TokenSource, Transport};
use crate::replica::StoredState;
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

    /// Runs a read that takes in another writer's commits; `None` when the storage was found
    /// lost and has been re-created from the replica instead (nothing left to take in).
    pub(super) async fn read_or_recreate(
        &self,
        read: impl std::future::Future<Output = Result<StoredState, StoreError>>,
    ) -> Result<Option<StoredState>, CoreError> {
        match read.await {
            Ok(stored) => Ok(Some(stored)),
            // Nothing to read from: the replica is the truth, and now stored again.
            Err(StoreError::Lost(reason)) => {
                self.recreate_store(reason).await?;
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
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
        let Some(stored) = self.read_or_recreate(self.store.load_part(keys)).await? else {
            return Ok(true);
        };
        if self.is_busy_besides(place.has_followers()) {
            return Ok(false);
        }
        let missing = self.replica.borrow_mut().refresh(stored, keys);
        if missing.is_empty() {
            self.set_role(role);
            return Ok(true);
        }
        // The store is ahead of what was announced (see `Replica::refresh`): read the records
        // its outbox names too, still in this place of the pipeline. A write that came
        // meanwhile is unsaved in memory: it stays, and the next attempt reads again.
        let stored = self.store.load_part(&missing).await?;
        if self.is_busy_besides(place.has_followers()) {
            return Ok(false);
        }
        let still_missing = self
            .replica
            .borrow_mut()
            .take_in_records(stored.records, &missing);
        if still_missing.is_empty() {
            self.set_role(role);
            return Ok(true);
        }
        // Entries whose record row is not stored at all: reopen from everything, which
        // repairs them as any load does.
        let stored = self.store.load().await?;
        if self.is_busy_besides(place.has_followers()) {
            // A write came meanwhile: keep it; the next attempt reads again.
            return Ok(false);
        }
        self.replace_replica(stored, role);
        Ok(true)
    }
}
