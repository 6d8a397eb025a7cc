//! Outcomes: what the app should hear about once it is durable — a change merged with
//! someone else's, a conflict waiting for a person, a change the server refused for good, a
//! server that lost history, storage that was lost. A bounded queue the app drains (the JS
//! API exposes it as an observable); when nobody drains it, the oldest are dropped and
//! counted, so a long-lived tab never grows without bound.

use crate::replica::{Event, Outcome, Rollback};
use std::collections::VecDeque;

/// Most outcomes kept undrained; older ones are dropped (and counted).
pub const MAX_QUEUED_OUTCOMES: usize = 1_000;

/// One thing the app should hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutcomeEvent {
    /// A local change was merged with a newer server state and goes out merged.
    Merged {
        entry_id: String,
        collection: String,
        record_id: String,
    },
    /// A local change met a different server state and waits in the conflict inbox.
    Conflicted {
        entry_id: String,
        conflict_id: String,
    },
    /// The server refused a change for good; it waits in the dead letters.
    DeadLettered {
        entry_id: String,
        letter_id: String,
        code: String,
    },
    /// The server lost history this device held; the device resyncs and re-pushes it.
    RollbackDetected {
        previous_epoch: String,
        epoch: String,
        cursor: u64,
        head: u64,
    },
    /// The local database was lost under the running replica (the browser layer reports it).
    StorageLost { reason: String },
    /// Stored data was inconsistent (a record row missing under its outbox entries); the
    /// record was rebuilt from the entries and resyncs from the server.
    CorruptData {
        collection: String,
        record_id: String,
        detail: String,
    },
}

impl OutcomeEvent {
    /// The stable name of the kind, as the JS API spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            OutcomeEvent::Merged { .. } => "merged",
            OutcomeEvent::Conflicted { .. } => "conflicted",
            OutcomeEvent::DeadLettered { .. } => "dead-lettered",
            OutcomeEvent::RollbackDetected { .. } => "rollback-detected",
            OutcomeEvent::StorageLost { .. } => "storage-lost",
            OutcomeEvent::CorruptData { .. } => "corrupt-data",
        }
    }

    /// The outcome a committed replica event means to the app, if any.
    pub fn of_event(event: &Event) -> Option<OutcomeEvent> {
        match event {
            Event::Settled {
                entry_id,
                collection,
                record_id,
                outcome: Outcome::Merged,
                ..
            } => Some(OutcomeEvent::Merged {
                entry_id: entry_id.clone(),
                collection: collection.clone(),
                record_id: record_id.clone(),
            }),
            Event::Conflicted {
                entry_id,
                conflict_id,
            } => Some(OutcomeEvent::Conflicted {
                entry_id: entry_id.clone(),
                conflict_id: conflict_id.clone(),
            }),
            Event::DeadLettered {
                entry_id,
                letter_id,
                code,
            } => Some(OutcomeEvent::DeadLettered {
                entry_id: entry_id.clone(),
                letter_id: letter_id.clone(),
                code: code.clone(),
            }),
            Event::CorruptData {
                collection,
                record_id,
                detail,
            } => Some(OutcomeEvent::CorruptData {
                collection: collection.clone(),
                record_id: record_id.clone(),
                detail: detail.clone(),
            }),
            _ => None,
        }
    }
}

impl From<Rollback> for OutcomeEvent {
    fn from(r: Rollback) -> Self {
        OutcomeEvent::RollbackDetected {
            previous_epoch: r.previous_epoch,
            epoch: r.epoch,
            cursor: r.cursor,
            head: r.head,
        }
    }
}

/// The bounded queue of undrained outcomes.
#[derive(Debug, Default)]
pub struct OutcomeQueue {
    queue: VecDeque<OutcomeEvent>,
    dropped: u64,
}

impl OutcomeQueue {
    pub fn push(&mut self, outcome: OutcomeEvent) {
        if self.queue.len() >= MAX_QUEUED_OUTCOMES {
            self.queue.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.queue.push_back(outcome);
    }

    /// Queues the outcomes of committed replica events.
    pub fn record(&mut self, events: &[Event]) {
        for outcome in events.iter().filter_map(OutcomeEvent::of_event) {
            self.push(outcome);
        }
    }

    /// Everything queued, oldest first; the queue is empty afterwards.
    pub fn drain(&mut self) -> Vec<OutcomeEvent> {
        self.queue.drain(..).collect()
    }

    /// How many outcomes were dropped because nobody drained them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undrained_queue_stays_bounded_and_counts_what_it_dropped() {
        let mut q = OutcomeQueue::default();
        for i in 0..(MAX_QUEUED_OUTCOMES + 10) {
            q.push(OutcomeEvent::StorageLost {
                reason: i.to_string(),
            });
        }
        assert_eq!(q.len(), MAX_QUEUED_OUTCOMES);
        assert_eq!(q.dropped(), 10);
        let drained = q.drain();
        assert_eq!(
            drained.first(),
            Some(&OutcomeEvent::StorageLost {
                reason: "10".into()
            }),
            "the oldest were dropped"
        );
        assert!(q.is_empty());
    }

    #[test]
    fn only_events_the_app_should_hear_about_become_outcomes() {
        let mut q = OutcomeQueue::default();
        q.record(&[
            Event::Applied {
                entry_id: "e1".into(),
                op_id: "o1".into(),
                version: 3,
            },
            Event::Settled {
                entry_id: "e2".into(),
                collection: "notes".into(),
                record_id: "n1".into(),
                outcome: Outcome::Merged,
                into: Some("e3".into()),
            },
            Event::Conflicted {
                entry_id: "e4".into(),
                conflict_id: "c1".into(),
            },
        ]);
        let kinds: Vec<&str> = q.drain().iter().map(OutcomeEvent::kind).collect();
        assert_eq!(kinds, ["merged", "conflicted"]);
    }
}
