//! The door to the PostgreSQL pool: at most as many operations at once as the pool has
//! connections for, and a short latch that fails operations at once while the database is
//! known to be unreachable.
//!
//! Why: the pool's acquire timeout is short (2 s) so that an outage is answered fast, but
//! sqlx reports a saturated pool and an unreachable database alike (`PoolTimedOut`). With
//! many clients of one tenant, pushes queue on the tenant's row lock while holding pool
//! connections, and requests waiting for a connection timed out under load although the
//! database was fine. Waiting here instead (without a timeout: the request's own lifetime
//! bounds it), a request only asks the pool when a connection is free or can be opened, so
//! an acquire timeout means the database cannot be reached.

use super::DbError;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long an observed outage fails later operations without trying.
const LATCH: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Gate {
    slots: Semaphore,
    down_until: Mutex<Option<Instant>>,
}

fn unavailable() -> DbError {
    DbError::Sql(sqlx::Error::PoolTimedOut)
}

impl Gate {
    /// A gate letting `slots` operations through at once.
    pub fn new(slots: usize) -> Self {
        Gate {
            slots: Semaphore::new(slots.max(1)),
            down_until: Mutex::new(None),
        }
    }

    fn is_down(&self) -> bool {
        let down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        down.is_some_and(|until| Instant::now() < until)
    }

    async fn enter(&self) -> Result<SemaphorePermit<'_>, DbError> {
        if self.is_down() {
            return Err(unavailable());
        }
        let permit = self.slots.acquire().await.map_err(|_| unavailable())?;
        if self.is_down() {
            return Err(unavailable());
        }
        Ok(permit)
    }

    /// Runs `op` once a slot is free; an outage it reports closes the gate for [`LATCH`].
    pub async fn run<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, DbError>>,
    ) -> Result<T, DbError> {
        let _slot = self.enter().await?;
        let result = op.await;
        if result.as_ref().is_err_and(DbError::is_outage) {
            *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + LATCH);
        }
        result
    }
}
