//! What the engine does with every server answer before folding it in: calibrate the clock
//! against `server_time`, take the advertised limits, check the history identity (a server
//! that lost history starts the repair and is reported), and check the answer against the
//! protocol (a broken answer is a `protocol_error`, and the replica stays untouched).

use super::Engine;
use crate::answers::{check_pull, check_push, ProtocolViolation};
use crate::outcomes::OutcomeEvent;
use crate::ports::{Clock, Entropy, Store, TokenSource, Transport};
use crate::protocol::{PullResponse, PushRequest, PushResponse, ServerLimits};
use crate::replica::Rollback;
use crate::state::Failure;

/// What a pull page means once checked.
pub(super) enum PageCheck {
    /// Fold it in.
    Fold,
    /// The server lost history: pull again from cursor 0 (the repair resync).
    RestartFromZero,
}

impl<S: Store, T: Transport, A: TokenSource, C: Clock, E: Entropy> Engine<S, T, A, C, E> {
    /// Calibration and limits: taken from every answer, broken or not.
    /// `sent_received`: when the request went out and its answer came back.
    fn take_server_facts(
        &self,
        server_time: u64,
        limits: Option<&ServerLimits>,
        (sent_at, received_at): (u64, u64),
    ) {
        let mut r = self.replica.borrow_mut();
        r.calibrate(server_time, sent_at, received_at);
        r.set_server_limits(limits);
    }

    fn note_rollback(&self, rollback: Rollback) {
        let now = self.clock.now_ms();
        self.state
            .borrow_mut()
            .rollback_detected(now, &rollback.previous_epoch, &rollback.epoch);
        self.report_outcome(OutcomeEvent::from(rollback));
    }

    /// Checks a push answer; `Err` leaves the replica as it was (the batch stays frozen).
    pub(super) fn check_push_answer(
        &self,
        req: &PushRequest,
        resp: &PushResponse,
        sent_received: (u64, u64),
    ) -> Result<(), (Failure, String)> {
        check_push(req, resp).map_err(protocol_failure)?;
        self.take_server_facts(resp.server_time, resp.limits.as_ref(), sent_received);
        let rollback = self
            .replica
            .borrow_mut()
            .check_history(&resp.epoch, resp.cursor);
        if let Some(rollback) = rollback {
            self.note_rollback(rollback);
        }
        Ok(())
    }

    /// Checks a pull page asked for at `cursor`. A second rollback within one cycle is a
    /// protocol error: a server whose history changes on every answer would otherwise make
    /// the client pull from 0 forever.
    pub(super) fn check_pull_page(
        &self,
        cursor: u64,
        limit: u32,
        page: &PullResponse,
        sent_received: (u64, u64),
        rolled_back_already: bool,
    ) -> Result<PageCheck, (Failure, String)> {
        let history = self
            .replica
            .borrow_mut()
            .check_history(&page.epoch, page.head);
        if let Some(rollback) = history {
            if rolled_back_already {
                return Err(protocol_failure(ProtocolViolation {
                    what: "the server's history changed twice within one sync cycle".into(),
                }));
            }
            self.take_server_facts(page.server_time, page.limits.as_ref(), sent_received);
            self.note_rollback(rollback);
            return Ok(PageCheck::RestartFromZero);
        }
        check_pull(cursor, limit, page).map_err(protocol_failure)?;
        self.take_server_facts(page.server_time, page.limits.as_ref(), sent_received);
        Ok(PageCheck::Fold)
    }
}

fn protocol_failure(v: ProtocolViolation) -> (Failure, String) {
    (Failure::Protocol, v.to_string())
}
