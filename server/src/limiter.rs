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
        if c.max_in_flight > 0 && bucket.in_flight >= c.max_in_flight {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: 1,
            });
        }
        if c.rate_per_sec > 0.0 {
            let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * c.rate_per_sec).min(c.burst);
            bucket.refilled = now;
            if bucket.tokens < 1.0 {
                let wait = ((1.0 - bucket.tokens) / c.rate_per_sec).ceil().max(1.0);
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
