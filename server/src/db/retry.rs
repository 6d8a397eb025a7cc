//! Retrying a transaction after a transient failure: a serialization failure or deadlock
//! (SQLSTATE 40001 / 40P01: what CockroachDB and YugabyteDB report under contention, and
//! PostgreSQL under SERIALIZABLE) or a busy SQLite file. The whole transaction runs again
//! from the start, after an exponential backoff with full jitter.

use super::DbError;
use rand::Rng;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a transaction is retried before the failure is returned.
pub const MAX_RETRIES: u32 = 8;

static RETRIES: AtomicU64 = AtomicU64::new(0);

/// Transactions retried by this process so far (exported as a metric).
pub fn retries_total() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

/// SQLSTATEs (PostgreSQL and compatibles) and SQLite result codes worth a retry.
const TRANSIENT_CODES: [&str; 6] = ["40001", "40P01", "5", "6", "517", "261"];

impl DbError {
    /// Whether the transaction may succeed if run again from the start.
    pub fn is_transient(&self) -> bool {
        let DbError::Sql(sqlx::Error::Database(e)) = self else {
            return false;
        };
        e.code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code.as_ref()))
    }
}

/// Runs `attempt` until it succeeds, fails for good, or failed transiently `MAX_RETRIES`
/// more times.
pub async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && retries < MAX_RETRIES => {
                retries += 1;
                RETRIES.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(retries, "retrying a transaction after a transient failure");
                tokio::time::sleep(backoff(retries)).await;
            }
            other => return other,
        }
    }
}

/// Up to 5 ms, 10 ms, 20 ms, ... capped at 500 ms.
fn backoff(retry: u32) -> Duration {
    let cap = (5u64 << retry.min(7)).min(500);
    Duration::from_millis(rand::thread_rng().gen_range(1..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::error::{DatabaseError, ErrorKind};
    use std::borrow::Cow;
    use std::cell::Cell;

    /// A database error with a chosen SQLSTATE.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            "coded"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn err(code: &'static str) -> DbError {
        DbError::Sql(sqlx::Error::Database(Box::new(Coded(code))))
    }

    #[tokio::test]
    async fn serialization_failures_are_retried() {
        let calls = Cell::new(0);
        let result = with_retries(|| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                match n {
                    1 => Err(err("40001")),
                    2 => Err(err("40P01")),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn other_failures_and_exhaustion_are_returned() {
        let calls = Cell::new(0);
        let result: Result<(), _> = with_retries(|| {
            calls.set(calls.get() + 1);
            async { Err(err("23505")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 1, "a unique violation is not retried");
        calls.set(0);
        let result: Result<(), _> = with_retries(|| {
            calls.set(calls.get() + 1);
            async { Err(err("40001")) }
        })
        .await;
        assert!(result.unwrap_err().is_transient());
        assert_eq!(calls.get(), MAX_RETRIES + 1);
    }
}
