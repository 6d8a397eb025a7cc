//! The sync state machine: offline / idle / syncing / backoff / error / auth-required,
//! and when the next attempt is due.

use crate::backoff::Backoff;
use serde::{Deserialize, Serialize};

/// What the engine is doing, as the app shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// No network; a probe is scheduled.
    Offline,
    /// Up to date, or waiting for the next trigger.
    Idle,
    /// A sync cycle is running.
    Syncing,
    /// A retryable failure; the next attempt is at `next_retry_at_ms`.
    Backoff,
    /// The server refused the request itself (not a single op); retried slowly.
    Error,
    /// The server refused the credentials and the app gave no working token.
    AuthRequired,
}

/// What ended a sync cycle badly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Network,
    Retryable { retry_after_ms: Option<u64> },
    Fatal,
    Auth,
}

/// The machine's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncState {
    pub status: Status,
    pub online: bool,
    pub failures: u32,
    pub next_retry_at_ms: Option<u64>,
    pub last_error: Option<String>,
    pub backoff: Backoff,
    /// A nudge arrived during a cycle (a poke for a change the cycle's pull may have
    /// missed): run another cycle right after this one.
    pub again: bool,
}

impl Default for SyncState {
    fn default() -> Self {
        SyncState {
            status: Status::Idle,
            online: true,
            failures: 0,
            next_retry_at_ms: Some(0),
            last_error: None,
            backoff: Backoff::default(),
            again: false,
        }
    }
}

impl SyncState {
    /// The browser says the network is back: try at once — from `auth-required` too, since
    /// the app's token callback may have failed only because the network was gone (one more
    /// 401 puts the client straight back).
    pub fn network_up(&mut self, now_ms: u64) {
        self.online = true;
        if matches!(self.status, Status::Offline | Status::Backoff) {
            self.status = Status::Idle;
        }
        self.next_retry_at_ms = Some(now_ms);
    }

    /// The browser says the network is gone. A probe stays scheduled: the event can lie.
    pub fn network_down(&mut self) {
        self.online = false;
        if self.status != Status::AuthRequired {
            self.status = Status::Offline;
        }
    }

    /// Something asks for a sync soon (a local write, a poke, the tab became visible).
    pub fn nudge(&mut self, now_ms: u64) {
        if self.status == Status::Syncing {
            self.again = true;
            return;
        }
        if matches!(
            self.status,
            Status::Idle | Status::Error | Status::AuthRequired
        ) || self.online && self.status == Status::Offline
        {
            self.next_retry_at_ms = Some(self.next_retry_at_ms.map_or(now_ms, |t| t.min(now_ms)));
        }
    }

    /// Whether a cycle may start now.
    pub fn is_due(&self, now_ms: u64) -> bool {
        self.status != Status::Syncing && self.next_retry_at_ms.is_some_and(|t| t <= now_ms)
    }

    pub fn started(&mut self) {
        self.status = Status::Syncing;
        self.next_retry_at_ms = None;
        self.again = false;
    }

    /// The cycle succeeded; if something asked for a sync meanwhile, the next is due now.
    pub fn succeeded(&mut self, now_ms: u64) {
        self.status = Status::Idle;
        self.online = true;
        self.failures = 0;
        self.last_error = None;
        self.next_retry_at_ms = std::mem::take(&mut self.again).then_some(now_ms);
    }

    /// A cycle failed; `random` feeds the jitter.
    pub fn failed(&mut self, failure: Failure, message: String, now_ms: u64, random: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(message);
        let (status, retry_after) = match failure {
            Failure::Network => {
                self.online = false;
                (Status::Offline, None)
            }
            Failure::Retryable { retry_after_ms } => {
                self.online = true;
                (Status::Backoff, retry_after_ms)
            }
            Failure::Fatal => (Status::Error, None),
            Failure::Auth => {
                self.status = Status::AuthRequired;
                self.next_retry_at_ms = None;
                return;
            }
        };
        self.status = status;
        let delay = self.backoff.delay_ms(self.failures, random, retry_after);
        self.next_retry_at_ms = Some(now_ms + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_return_retries_at_once() {
        let mut s = SyncState::default();
        s.started();
        s.failed(Failure::Network, "down".into(), 1_000, 123_456);
        assert_eq!(s.status, Status::Offline);
        assert!(!s.is_due(1_000) || s.next_retry_at_ms == Some(1_000));
        s.network_up(1_500);
        assert_eq!(s.status, Status::Idle);
        assert!(s.is_due(1_500));
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut s = SyncState::default();
        s.failed(
            Failure::Retryable {
                retry_after_ms: Some(7_000),
            },
            "429".into(),
            0,
            0,
        );
        assert_eq!(s.status, Status::Backoff);
        assert!(!s.is_due(6_999));
        assert!(s.is_due(7_000));
    }

    #[test]
    fn auth_failure_waits_for_the_app() {
        let mut s = SyncState::default();
        s.failed(Failure::Auth, "401".into(), 0, 0);
        assert_eq!(s.status, Status::AuthRequired);
        assert!(!s.is_due(u64::MAX));
        s.nudge(10);
        assert!(s.is_due(10));
    }

    #[test]
    fn a_nudge_during_a_cycle_runs_another_one_after_it() {
        // A poke for a change made after the cycle's pull must not be lost.
        let mut s = SyncState::default();
        s.nudge(0);
        s.started();
        s.nudge(5);
        assert!(!s.is_due(5), "not while syncing");
        s.succeeded(10);
        assert!(s.is_due(10));
        s.started();
        s.succeeded(20);
        assert!(!s.is_due(u64::MAX), "no nudge, no extra cycle");
    }

    #[test]
    fn the_network_returning_retries_after_an_auth_failure() {
        // getToken fails while offline (its own fetch cannot reach the server): the engine
        // must not wait in auth-required for the app once the network is back.
        let mut s = SyncState::default();
        s.network_down();
        s.failed(Failure::Auth, "getToken failed".into(), 0, 0);
        assert!(!s.is_due(u64::MAX));
        s.network_up(20);
        assert_eq!(
            s.status,
            Status::AuthRequired,
            "until a request says otherwise"
        );
        assert!(s.is_due(20));
    }
}
