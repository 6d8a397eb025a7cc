//! The sync state machine: offline / idle / syncing / backoff / error / auth-required,
//! and when the next attempt is due.

use crate::answers::PROTOCOL_ERROR;
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
    /// The request never got an answer because the network is down.
    Network,
    /// The server (or the way to it) answered, or did not answer in time: try again soon.
    Retryable {
        retry_after_ms: Option<u64>,
    },
    /// The server's answer broke the protocol: back off, and say what was wrong.
    Protocol,
    Fatal,
    /// 401, or no token from the app: `code` says which (the server's typed code).
    Auth {
        code: String,
    },
    /// The server accepts writes only from a newer app data version (409
    /// `upgrade_required`): the outbox waits for the app's update; retried slowly like
    /// [`Failure::Fatal`], with the code in `last_error_code`.
    UpgradeRequired,
}

/// While the server keeps answering (5xx, timeouts, protocol errors), retries stay this
/// close together: the outage is on the server's side and ends without a browser event, so
/// waiting minutes would only delay the recovery.
pub const ANSWERING_BACKOFF_CAP_MS: u64 = 30_000;

/// The last rollback this replica saw (the server lost history it held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackSeen {
    pub at_ms: u64,
    pub previous_epoch: String,
    pub epoch: String,
}

/// The last inconsistency found in stored data (see `OutcomeEvent::CorruptData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptSeen {
    pub at_ms: u64,
    pub collection: String,
    pub record_id: String,
    pub detail: String,
}

/// The machine's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncState {
    pub status: Status,
    pub online: bool,
    pub failures: u32,
    pub next_retry_at_ms: Option<u64>,
    pub last_error: Option<String>,
    /// The stable code of `last_error` when it has one (`protocol_error`).
    pub last_error_code: Option<String>,
    /// The last server rollback detected (kept after the repair, so the app can tell).
    pub last_rollback: Option<RollbackSeen>,
    /// The last corrupt stored data found and repaired (kept, so the app can tell).
    pub last_corrupt_data: Option<CorruptSeen>,
    /// The browser said the network is gone (a failed request alone does not say so).
    pub browser_offline: bool,
    /// No retry before this time: the server's `Retry-After`, which a nudge honours too.
    pub not_before_ms: u64,
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
            last_error_code: None,
            last_rollback: None,
            last_corrupt_data: None,
            browser_offline: false,
            not_before_ms: 0,
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
        self.browser_offline = false;
        if matches!(self.status, Status::Offline | Status::Backoff) {
            self.status = Status::Idle;
        }
        self.next_retry_at_ms = Some(now_ms.max(self.not_before_ms));
    }

    /// The browser says the network is gone. A probe stays scheduled: the event can lie.
    pub fn network_down(&mut self) {
        self.online = false;
        self.browser_offline = true;
        if self.status != Status::AuthRequired {
            self.status = Status::Offline;
        }
    }

    /// Something asks for a sync soon (a local write, a poke, the tab became visible): try
    /// at once — after a server outage too (backoff), since the poke or the person may know
    /// the server is back — but never before the server's `Retry-After`, and not while the
    /// browser says the network is gone (its `online` event retries then).
    pub fn nudge(&mut self, now_ms: u64) {
        if self.status == Status::Syncing {
            self.again = true;
            return;
        }
        if self.browser_offline && self.status == Status::Offline {
            return;
        }
        let at = now_ms.max(self.not_before_ms);
        self.next_retry_at_ms = Some(self.next_retry_at_ms.map_or(at, |t| t.min(at)));
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
        self.last_error_code = None;
        self.not_before_ms = 0;
        self.next_retry_at_ms = std::mem::take(&mut self.again).then_some(now_ms);
    }

    /// A cycle failed; `random` feeds the jitter.
    pub fn failed(&mut self, failure: Failure, message: String, now_ms: u64, random: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(message);
        self.last_error_code = match &failure {
            Failure::Protocol => Some(PROTOCOL_ERROR.to_owned()),
            // The server's typed 401 code (`token_expired`, …), so the app can say why.
            Failure::Auth { code } => Some(code.clone()),
            Failure::UpgradeRequired => Some(crate::ErrorCode::UpgradeRequired.as_str().to_owned()),
            _ => None,
        };
        let mut backoff = self.backoff;
        let (status, retry_after) = match failure {
            Failure::Network => {
                self.online = false;
                (Status::Offline, None)
            }
            Failure::Retryable { retry_after_ms } => {
                self.online = true;
                backoff.cap_ms = backoff.cap_ms.min(ANSWERING_BACKOFF_CAP_MS);
                (Status::Backoff, retry_after_ms)
            }
            Failure::Protocol => {
                self.online = true;
                backoff.cap_ms = backoff.cap_ms.min(ANSWERING_BACKOFF_CAP_MS);
                (Status::Backoff, None)
            }
            Failure::Fatal | Failure::UpgradeRequired => (Status::Error, None),
            Failure::Auth { .. } => {
                self.status = Status::AuthRequired;
                self.next_retry_at_ms = None;
                return;
            }
        };
        self.status = status;
        self.not_before_ms = retry_after.map_or(0, |after| now_ms.saturating_add(after));
        let delay = backoff.delay_ms(self.failures, random, retry_after);
        self.next_retry_at_ms = Some(now_ms.saturating_add(delay));
    }

    /// A server answer showed it lost history this replica held (the repair is under way).
    pub fn rollback_detected(&mut self, now_ms: u64, previous_epoch: &str, epoch: &str) {
        self.last_rollback = Some(RollbackSeen {
            at_ms: now_ms,
            previous_epoch: previous_epoch.to_owned(),
            epoch: epoch.to_owned(),
        });
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
        s.failed(
            Failure::Auth {
                code: "token_expired".into(),
            },
            "token_expired: the token expired".into(),
            0,
            0,
        );
        assert_eq!(s.last_error_code.as_deref(), Some("token_expired"));
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
    fn a_nudge_retries_at_once_after_a_server_outage() {
        let mut s = SyncState::default();
        for failures in 0..20 {
            s.started();
            s.failed(
                Failure::Retryable {
                    retry_after_ms: None,
                },
                "503".into(),
                1_000,
                u64::MAX - failures,
            );
        }
        assert_eq!(s.status, Status::Backoff);
        assert!(
            s.next_retry_at_ms.unwrap() <= 1_000 + ANSWERING_BACKOFF_CAP_MS,
            "backoff stays short while the server answers"
        );
        s.nudge(2_000);
        assert!(s.is_due(2_000), "a poke or a write retries at once");
    }

    #[test]
    fn a_nudge_does_not_retry_before_retry_after() {
        let mut s = SyncState::default();
        s.failed(
            Failure::Retryable {
                retry_after_ms: Some(10_000),
            },
            "429".into(),
            0,
            0,
        );
        s.nudge(1);
        assert!(!s.is_due(9_999));
        assert!(s.is_due(10_000));
    }

    #[test]
    fn a_failed_request_alone_does_not_keep_nudges_waiting() {
        // The server is down but the browser is online: a poke retries at once.
        let mut s = SyncState::default();
        s.failed(Failure::Network, "connection refused".into(), 0, u64::MAX);
        s.nudge(5);
        assert!(s.is_due(5));
        // The browser says offline: its `online` event will retry.
        s.network_down();
        s.failed(Failure::Network, "offline".into(), 10, 2_000);
        s.nudge(15);
        assert!(!s.is_due(15));
    }

    #[test]
    fn huge_retry_after_values_do_not_overflow() {
        let mut s = SyncState::default();
        s.failed(
            Failure::Retryable {
                retry_after_ms: Some(u64::MAX),
            },
            "429".into(),
            u64::MAX - 5,
            u64::MAX,
        );
        assert_eq!(s.next_retry_at_ms, Some(u64::MAX));
    }

    #[test]
    fn a_protocol_error_backs_off_with_its_code() {
        let mut s = SyncState::default();
        s.failed(Failure::Protocol, "protocol_error: x".into(), 0, 0);
        assert_eq!(s.status, Status::Backoff);
        assert_eq!(s.last_error_code.as_deref(), Some("protocol_error"));
        s.succeeded(1);
        assert_eq!(s.last_error_code, None);
    }

    #[test]
    fn the_network_returning_retries_after_an_auth_failure() {
        // getToken fails while offline (its own fetch cannot reach the server): the engine
        // must not wait in auth-required for the app once the network is back.
        let mut s = SyncState::default();
        s.network_down();
        s.failed(
            Failure::Auth {
                code: "token_unavailable".into(),
            },
            "getToken failed".into(),
            0,
            0,
        );
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
