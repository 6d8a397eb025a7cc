//! What a person decides: resolving conflicts from the inbox and retrying or discarding
//! dead letters. Each choice becomes an ordinary local write, pushed with a new op id.

use super::{key, Event, Replica};
use crate::error::{CoreError, ErrorCode};
use crate::policy::State;
use crate::protocol::validate_fields;

/// How a person resolved a conflict.
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// Keep this device's version.
    Local,
    /// Take the server's version.
    Server,
    /// Use this state (for example picked field by field).
    Merged(State),
}

impl Choice {
    pub fn name(&self) -> &'static str {
        match self {
            Choice::Local => "local",
            Choice::Server => "server",
            Choice::Merged(_) => "merged",
        }
    }
}

impl Replica {
    /// Resolves a conflict. `Local` and `Merged` are pushed over the server's current version.
    pub fn resolve_conflict(
        &mut self,
        conflict_id: &str,
        choice: Choice,
        now_ms: u64,
    ) -> Result<Option<String>, CoreError> {
        let Some(conflict) = self.conflicts.get(conflict_id) else {
            return Err(CoreError::new(
                ErrorCode::UnknownConflict,
                format!("no conflict `{conflict_id}` (it may be resolved already)"),
            ));
        };
        if let Choice::Merged(state) = &choice {
            validate_fields("merged", &state.fields)
                .map_err(|e| CoreError::new(ErrorCode::InvalidRecord, e.to_string()))?;
        }
        let k = key(&conflict.collection, &conflict.record_id);
        let desired = match &choice {
            Choice::Local => Some(conflict.local.clone()),
            Choice::Server => None,
            Choice::Merged(state) => Some(state.clone()),
        };
        let conflict = self.conflicts.remove(conflict_id).expect("checked above");
        self.dirty.conflicts.insert(conflict_id.to_owned());
        let into = match desired {
            Some(state) => {
                let hlc = self.tick(now_ms);
                self.set_view(&k, state, hlc.clone());
                self.reconcile_entry(&k, &hlc, hlc.clone(), now_ms, true)
            }
            None => None,
        };
        self.events.push(Event::ConflictResolved {
            conflict_id: conflict.conflict_id,
            choice: choice.name(),
            into: into.clone(),
        });
        Ok(into)
    }

    /// Sends a dead letter again, as it was or as `edited`.
    pub fn retry_dead_letter(
        &mut self,
        letter_id: &str,
        edited: Option<State>,
        now_ms: u64,
    ) -> Result<Option<String>, CoreError> {
        let Some(letter) = self.dead_letters.get(letter_id) else {
            return Err(unknown_letter(letter_id));
        };
        if let Some(state) = &edited {
            validate_fields("edited", &state.fields)
                .map_err(|e| CoreError::new(ErrorCode::InvalidRecord, e.to_string()))?;
        }
        let k = key(&letter.collection, &letter.record_id);
        let desired = edited.unwrap_or_else(|| letter.desired.clone());
        self.dead_letters.remove(letter_id);
        self.dirty.dead_letters.insert(letter_id.to_owned());
        let hlc = self.tick(now_ms);
        self.set_view(&k, desired, hlc.clone());
        let into = self.reconcile_entry(&k, &hlc, hlc.clone(), now_ms, true);
        self.events.push(Event::LetterRetried {
            letter_id: letter_id.to_owned(),
            into: into.clone(),
        });
        Ok(into)
    }

    /// Drops a dead letter; the record stays as the server has it.
    pub fn discard_dead_letter(&mut self, letter_id: &str) -> Result<(), CoreError> {
        if self.dead_letters.remove(letter_id).is_none() {
            return Err(unknown_letter(letter_id));
        }
        self.dirty.dead_letters.insert(letter_id.to_owned());
        self.events.push(Event::LetterDiscarded {
            letter_id: letter_id.to_owned(),
        });
        Ok(())
    }
}

fn unknown_letter(letter_id: &str) -> CoreError {
    CoreError::new(
        ErrorCode::UnknownDeadLetter,
        format!("no dead letter `{letter_id}` (it may be retried or discarded already)"),
    )
}
