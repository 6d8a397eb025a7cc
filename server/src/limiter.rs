//! A per-tenant limiter: at most `max_in_flight` requests at once and, on average,
//! `rate_per_sec` requests per second (a token bucket holding twice that). Over either limit
//! the request gets 429 with `Retry-After`. Generous by default; 0 turns a limit off.
//!
//! It is per process: with N processes a tenant may get N times the limit, which is fine for
//! its purpose (keeping one tenant from starving the others on a process).

use crate::errors::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Limits per tenant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitConfig {
    /// Most requests in flight at once (0: no limit).
    pub max_in_flight: usize,
    /// Average requests per second (0: no limit).
    pub rate_per_sec: f64,
    /// Bucket size: how many requests may come at once after a quiet time.
    pub burst: f64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig::new(256, 500.0)
    }
}

impl LimitConfig {
    pub fn new(max_in_flight: usize, rate_per_sec: f64) -> Self {
        let rate = if rate_per_sec.is_finite() {
            rate_per_sec.max(0.0)
        } else {
            0.0
        };
        LimitConfig {
            max_in_flight,
            rate_per_sec: rate,
            burst: (rate * 2.0).max(1.0),
        }
    }

    /// No limits at all.
    pub fn unlimited() -> Self {
        LimitConfig {
            max_in_flight: 0,
            rate_per_sec: 0.0,
            burst: 1.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    in_flight: usize,
    tokens: f64,
    refilled: Instant,
}

/// Shared by all requests of a process.
#[derive(Debug)]
pub struct Limiter {
    config: LimitConfig,
    tenants: Mutex<HashMap<String, Bucket>>,
}

/// Holds one in-flight slot until dropped.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    tenant: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut tenants = self
            .limiter
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = tenants.get_mut(&self.tenant) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
        }
    }
}

/// Most tenants tracked before idle ones are forgotten.
const MAX_TRACKED: usize = 10_000;

impl Limiter {
    pub fn new(config: LimitConfig) -> Arc<Self> {
        Arc::new(Limiter {
            config,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `tenant`, or says how long to wait.
    pub fn acquire(self: &Arc<Self>, tenant: &str) -> Result<Permit, ApiError> {
        self.acquire_share(tenant, 1.0)
    }

    /// [`Limiter::acquire`] for a request that may use only `share` (0 to 1) of the tenant's
    /// in-flight slots and of its token bucket: the rest is kept for more urgent requests
    /// (`crate::priority`), so under load they go through first.
    pub fn acquire_share(self: &Arc<Self>, tenant: &str, share: f64) -> Result<Permit, ApiError> {
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let c = self.config;
        let now = Instant::now();
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if tenants.len() >= MAX_TRACKED && !tenants.contains_key(tenant) {
            tenants.retain(|_, b| b.in_flight > 0);
        }
        let bucket = tenants.entry(tenant.to_owned()).or_insert_with(|| Bucket {
            in_flight: 0,
            tokens: c.burst,
            refilled: now,
        });
        // At least one slot, so a lone request of any priority is never refused.
        let slots = ((c.max_in_flight as f64 * share).floor() as usize).max(1);
        if c.max_in_flight > 0 && bucket.in_flight >= slots {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: 1,
            });
        }
        if c.rate_per_sec > 0.0 {
            let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * c.rate_per_sec).min(c.burst);
            bucket.refilled = now;
            // The tokens kept for more urgent requests stay in the bucket.
            // (Never more than the bucket holds, so a small bucket refuses no priority for good.)
            let needed = (1.0 + c.burst * (1.0 - share)).min(c.burst.max(1.0));
            if bucket.tokens < needed {
                let wait = ((needed - bucket.tokens) / c.rate_per_sec).ceil().max(1.0);
                return Err(ApiError::TooManyRequests {
                    retry_after_secs: wait as u64,
                });
            }
            bucket.tokens -= 1.0;
        }
        bucket.in_flight += 1;
        Ok(Permit {
            limiter: Arc::clone(self),
            tenant: tenant.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_limit_frees_on_drop() {
        let limiter = Limiter::new(LimitConfig {
            max_in_flight: 2,
            rate_per_sec: 0.0,
            burst: 1.0,
        });
        let a = limiter.acquire("t").unwrap();
        let _b = limiter.acquire("t").unwrap();
        assert!(matches!(
            limiter.acquire("t"),
            Err(ApiError::TooManyRequests {
                retry_after_secs: 1
            })
        ));
        assert!(limiter.acquire("other").is_ok());
        drop(a);
        assert!(limiter.acquire("t").is_ok());
    }

    #[test]
    fn a_smaller_share_leaves_slots_and_tokens_for_more_urgent_requests() {
        let limiter = Limiter::new(LimitConfig {
            max_in_flight: 10,
            rate_per_sec: 0.0,
            burst: 1.0,
        });
        let mut held = Vec::new();
        // Background (half the share) stops at 5 in flight; critical still gets the rest.
        while let Ok(p) = limiter.acquire_share("t", 0.5) {
            held.push(p);
        }
        assert_eq!(held.len(), 5);
        while let Ok(p) = limiter.acquire_share("t", 1.0) {
            held.push(p);
        }
        assert_eq!(held.len(), 10);

        let rated = Limiter::new(LimitConfig::new(0, 0.001));
        // burst = max(2 × rate, 1) = 1: a small bucket refuses no share for good.
        assert!(rated.acquire_share("t", 0.5).is_ok());
        let rated = Limiter::new(LimitConfig {
            max_in_flight: 0,
            rate_per_sec: 0.001,
            burst: 10.0,
        });
        let mut background = 0;
        while rated.acquire_share("t", 0.5).is_ok() {
            background += 1;
        }
        // Background spends down to the reserve; critical spends the reserve.
        assert_eq!(background, 5);
        let mut critical = 0;
        while rated.acquire_share("t", 1.0).is_ok() {
            critical += 1;
        }
        assert_eq!(critical, 5);
    }

    #[test]
    fn rate_limit_empties_the_bucket() {
        let limiter = Limiter::new(LimitConfig {
            max_in_flight: 0,
            rate_per_sec: 0.001,
            burst: 2.0,
        });
        assert!(limiter.acquire("t").is_ok());
        assert!(limiter.acquire("t").is_ok());
        match limiter.acquire("t") {
            Err(ApiError::TooManyRequests { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
    }
}
