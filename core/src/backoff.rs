//! Retry timing: exponential backoff with full jitter that never retries before the
//! server's `Retry-After`.

/// Backoff settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 1_000,
            cap_ms: 5 * 60_000,
        }
    }
}

impl Backoff {
    /// The delay before retry number `failures` (1 for the first retry): uniform in
    /// `[0, min(cap, base * 2^(failures-1))]` ("full jitter"), and at least `retry_after_ms`.
    pub fn delay_ms(&self, failures: u32, random: u64, retry_after_ms: Option<u64>) -> u64 {
        let exp = failures.saturating_sub(1).min(32);
        let ceiling = self.base_ms.saturating_mul(1u64 << exp).min(self.cap_ms);
        let jittered = random % (ceiling + 1);
        jittered.max(retry_after_ms.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1_000,
        };
        assert_eq!(b.delay_ms(1, u64::MAX, None), u64::MAX % 101);
        assert!(b.delay_ms(3, 399, None) == 399);
        assert!(b.delay_ms(30, u64::MAX - 1, None) <= 1_000);
    }

    #[test]
    fn honours_retry_after() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0, Some(30_000)), 30_000);
    }
}
