//! What the app hears about: the core's outcome events (merged, conflicted, dead-lettered,
//! rollback detected, storage lost) as the `outcomes()` observable, and the recovery of a
//! database lost under the running tab.
//!
//! The core keeps outcomes in a bounded queue; this file drains it after every commit and
//! sync cycle (see `views.rs`), so nothing grows for the life of the tab. The observable's
//! value is the newest [`KEPT`] outcomes, oldest first, each with a rising `seq`: a
//! subscriber reacts to the ones whose `seq` it has not seen.

use super::Client;
use ferry_core::outcomes::OutcomeEvent;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::rc::Rc;

/// How many outcomes the observable's value holds.
pub const KEPT: usize = 100;

/// The newest outcomes, numbered.
#[derive(Default)]
pub struct OutcomeLog {
    next_seq: u64,
    kept: VecDeque<Value>,
    /// The last storage loss, for the sync state (`storageLost`).
    pub storage_lost: Option<Value>,
}

impl OutcomeLog {
    fn push(&mut self, outcome: &OutcomeEvent, at_ms: u64) {
        self.next_seq += 1;
        let mut value = outcome_json(outcome);
        value["seq"] = json!(self.next_seq);
        value["at"] = json!(at_ms);
        if let OutcomeEvent::StorageLost { reason } = outcome {
            self.storage_lost = Some(json!({"at": at_ms, "reason": reason}));
        }
        if self.kept.len() == KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(value);
    }
}

/// One outcome as the JS API shows it: `{kind, ...}` in camelCase.
fn outcome_json(outcome: &OutcomeEvent) -> Value {
    let kind = outcome.kind();
    match outcome {
        OutcomeEvent::Merged {
            entry_id,
            collection,
            record_id,
        } => json!({"kind": kind, "entryId": entry_id, "collection": collection, "id": record_id}),
        OutcomeEvent::Conflicted {
            entry_id,
            conflict_id,
        } => json!({"kind": kind, "entryId": entry_id, "conflictId": conflict_id}),
        OutcomeEvent::DeadLettered {
            entry_id,
            letter_id,
            code,
        } => json!({"kind": kind, "entryId": entry_id, "letterId": letter_id, "code": code}),
        OutcomeEvent::RollbackDetected {
            previous_epoch,
            epoch,
            cursor,
            head,
        } => {
            json!({"kind": kind, "previousEpoch": previous_epoch, "epoch": epoch, "cursor": cursor, "head": head})
        }
        OutcomeEvent::StorageLost { reason } => json!({"kind": kind, "reason": reason}),
        OutcomeEvent::CorruptData {
            collection,
            record_id,
            detail,
        } => json!({"kind": kind, "collection": collection, "id": record_id, "detail": detail}),
    }
}

impl Client {
    /// Drains the core's outcomes, and the store's re-creations of a lost database, into the
    /// `outcomes()` observable.
    pub(super) fn publish_outcomes(&self) {
        let mut drained = self.engine.drain_outcomes();
        drained.extend(
            self.store
                .take_recreations()
                .into_iter()
                .map(|reason| OutcomeEvent::StorageLost { reason }),
        );
        if drained.is_empty() {
            return;
        }
        let now = self.engine.now_ms();
        let text = {
            let mut log = self.outcome_log.borrow_mut();
            for outcome in &drained {
                log.push(outcome, now);
            }
            Value::Array(log.kept.iter().cloned().collect()).to_string()
        };
        self.outcomes
            .set_if_changed(text.clone(), || crate::interop::json_to_js(&text));
    }

    /// The database was closed under this tab (`close`, `versionchange`): once the other
    /// side is done with it, check it is still this replica's, and re-create it from the
    /// replica when it is not (see ferry-core's `engine/storage_lost.rs`).
    pub(super) fn watch_storage(&self) {
        let me = self.me.clone();
        self.store.set_on_closed(Rc::new(move || {
            let Some(client) = me.upgrade() else {
                return;
            };
            wasm_bindgen_futures::spawn_local(async move {
                // Let the tab that deletes or upgrades the database go first: this tab's
                // reopen then queues behind it.
                crate::platform::sleep_ms(STORAGE_CHECK_DELAY_MS).await;
                if client.is_closed() {
                    return;
                }
                client.check_storage().await;
            });
        }));
    }

    async fn check_storage(&self) {
        match self.engine.check_storage().await {
            Ok(true) => {
                self.after_storage_recreated();
                self.publish_sync_state();
            }
            Ok(false) => {}
            Err(e) => {
                web_sys::console::warn_2(
                    &"ferry: checking the database failed".into(),
                    &crate::interop::core_error(&e),
                );
            }
        }
    }

    /// The database was re-created from the replica: the other tabs reload it, and the
    /// leader pulls everything again (the cursor was reset).
    pub(super) fn after_storage_recreated(&self) {
        self.announce_commits();
        self.engine.nudge();
        self.wake_network(false);
        self.changed(true);
    }
}

/// How long after the connection closed the database is checked.
const STORAGE_CHECK_DELAY_MS: u32 = 50;
