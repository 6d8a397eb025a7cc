//! Follows every durable local write to its end: applied once on the server, settled by the
//! policy, waiting in the conflict inbox or the dead letters, or undone by a later write.

use crate::replica::{Event, Outcome};
use std::collections::HashMap;

/// Where an outbox entry ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Pending,
    Applied {
        op_id: String,
    },
    /// Moved into another entry (coalesced, merged, kept by last-writer-wins, re-pushed).
    MovedTo(String),
    Superseded,
    Cancelled,
    InConflict(String),
    DeadLetter(String),
    /// A person chose the server's version, or discarded the letter.
    DroppedByPerson,
}

/// The fates of one client's entries.
#[derive(Default, Debug)]
pub struct FateBook {
    fates: HashMap<String, Fate>,
}

impl FateBook {
    pub fn note_write(&mut self, entry_id: &str) {
        self.fates
            .entry(entry_id.to_owned())
            .or_insert(Fate::Pending);
    }

    fn set_where(&mut self, pred: impl Fn(&Fate) -> bool, fate: Fate) {
        for f in self.fates.values_mut() {
            if pred(f) {
                *f = fate.clone();
            }
        }
    }

    pub fn apply(&mut self, event: &Event) -> Result<(), String> {
        match event {
            Event::Applied {
                entry_id, op_id, ..
            } => self.settle(
                entry_id,
                Fate::Applied {
                    op_id: op_id.clone(),
                },
            ),
            Event::Settled {
                entry_id,
                outcome,
                into,
                ..
            } => {
                let fate = match (outcome, into) {
                    (Outcome::Merged | Outcome::Kept, Some(into)) => Fate::MovedTo(into.clone()),
                    (Outcome::Merged | Outcome::Kept, None) => Fate::Superseded,
                    (Outcome::Superseded, _) => Fate::Superseded,
                };
                self.settle(entry_id, fate)
            }
            Event::Coalesced { entry_id, into } => {
                self.settle(entry_id, Fate::MovedTo(into.clone()))
            }
            Event::Conflicted {
                entry_id,
                conflict_id,
            } => self.settle(entry_id, Fate::InConflict(conflict_id.clone())),
            Event::DeadLettered {
                entry_id,
                letter_id,
                ..
            } => self.settle(entry_id, Fate::DeadLetter(letter_id.clone())),
            Event::Cancelled { entry_id } => self.settle(entry_id, Fate::Cancelled),
            Event::ConflictResolved {
                conflict_id, into, ..
            } => {
                let next = into.clone().map_or(Fate::DroppedByPerson, Fate::MovedTo);
                if let Some(into) = into {
                    self.note_write(into);
                }
                self.set_where(|f| *f == Fate::InConflict(conflict_id.clone()), next);
                Ok(())
            }
            Event::LetterRetried { letter_id, into } => {
                let next = into.clone().map_or(Fate::DroppedByPerson, Fate::MovedTo);
                if let Some(into) = into {
                    self.note_write(into);
                }
                self.set_where(|f| *f == Fate::DeadLetter(letter_id.clone()), next);
                Ok(())
            }
            Event::CorruptData { .. } => Ok(()),
            Event::LetterDiscarded { letter_id } => {
                self.set_where(
                    |f| *f == Fate::DeadLetter(letter_id.clone()),
                    Fate::DroppedByPerson,
                );
                Ok(())
            }
        }
    }

    /// Entries the engine made itself (merges, re-pushes) are tracked from their first event.
    fn settle(&mut self, entry_id: &str, fate: Fate) -> Result<(), String> {
        if let Fate::MovedTo(into) = &fate {
            self.note_write(into);
        }
        let slot = self
            .fates
            .entry(entry_id.to_owned())
            .or_insert(Fate::Pending);
        if *slot != Fate::Pending {
            return Err(format!(
                "entry {entry_id} ended twice: {slot:?}, then {fate:?}"
            ));
        }
        *slot = fate;
        Ok(())
    }

    /// Follows `MovedTo` links to the final fate of an entry.
    pub fn final_fate(&self, entry_id: &str) -> Fate {
        let mut id = entry_id.to_owned();
        for _ in 0..10_000 {
            match self.fates.get(&id) {
                Some(Fate::MovedTo(next)) => id = next.clone(),
                Some(f) => return f.clone(),
                None => return Fate::Pending,
            }
        }
        Fate::Pending
    }

    pub fn entries(&self) -> impl Iterator<Item = &String> {
        self.fates.keys()
    }

    /// Every op id this client's entries were applied as.
    pub fn applied_ops(&self) -> impl Iterator<Item = &String> {
        self.fates.values().filter_map(|f| match f {
            Fate::Applied { op_id } => Some(op_id),
            _ => None,
        })
    }
}
