//! `auth-required` carries what the server said: a 401's typed code (`token_expired`, …) and
//! message reach the sync state, after the one token refresh the engine tries; a token source
//! that fails gives `token_unavailable` with the app's reason.

use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{RequestMeta, TokenSource, Transport, TransportError};
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};
use ferry_core::replica::ReplicaConfig;
use ferry_core::state::Status;
use std::cell::Cell;
use std::rc::Rc;

/// A server that refuses every token as expired.
#[derive(Clone, Default)]
struct Refusing {
    requests: Rc<Cell<u32>>,
}

impl Refusing {
    fn refuse(&self) -> TransportError {
        self.requests.set(self.requests.get() + 1);
        TransportError::Unauthorized {
            code: "token_expired".into(),
            message: "the token expired at 2026-12-01T10:00:00Z".into(),
        }
    }
}

impl Transport for Refusing {
    async fn push(&self, _: &PushRequest, _: &RequestMeta) -> Result<PushResponse, TransportError> {
        Err(self.refuse())
    }

    async fn pull(&self, _: u64, _: u32, _: &RequestMeta) -> Result<PullResponse, TransportError> {
        Err(self.refuse())
    }
}

/// Gives a token, or fails with the app's reason.
struct Tokens {
    fail: bool,
}

impl TokenSource for Tokens {
    async fn token(&self, _refresh: bool) -> Result<Option<String>, String> {
        if self.fail {
            Err("the user signed out".into())
        } else {
            Ok(Some("old-token".into()))
        }
    }
}

fn engine(
    server: Refusing,
    fail: bool,
) -> Engine<MemoryStore, Refusing, Tokens, ManualClock, SeededEntropy> {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    block_on(Engine::open(
        MemoryStore::new(),
        server,
        Tokens { fail },
        ManualClock::new(1_700_000_000_000),
        SeededEntropy::new(7),
        config,
    ))
    .unwrap()
}

#[test]
fn a_typed_401_reaches_auth_required_with_its_code_and_message() {
    let server = Refusing::default();
    let e = engine(server.clone(), false);
    let outcome = block_on(e.sync());
    assert!(matches!(outcome, CycleOutcome::Failed(_)));
    // The first refusal asks the app for a fresh token and tries once more.
    assert_eq!(server.requests.get(), 2);
    let s = e.sync_state();
    assert_eq!(s.status, Status::AuthRequired);
    assert_eq!(s.last_error_code.as_deref(), Some("token_expired"));
    let message = s.last_error.clone().unwrap();
    assert!(
        message.contains("the token expired at 2026-12-01T10:00:00Z"),
        "{message}"
    );
}

#[test]
fn a_failing_token_source_says_so() {
    let server = Refusing::default();
    let e = engine(server.clone(), true);
    block_on(e.sync());
    assert_eq!(server.requests.get(), 0);
    let s = e.sync_state();
    assert_eq!(s.status, Status::AuthRequired);
    assert_eq!(s.last_error_code.as_deref(), Some("token_unavailable"));
    assert!(
        s.last_error
            .clone()
            .unwrap()
            .contains("the user signed out"),
        "{:?}",
        s.last_error
    );
}
