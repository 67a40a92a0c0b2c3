//! When and how long to wait before retrying a transient fault: capped exponential backoff with jitter.

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

/// How often and how patiently the client retries transient faults (connection refused or reset, timeout,
/// 5xx, `idempotency_in_progress`). Rejections (4xx) and TLS failures are never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, backing off about 100 ms, 200 ms, 400 ms (capped at 2 s).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (0-based): `min(max, initial * 2^retry)`, of which the upper half is
    /// random ("equal jitter"), so clients that failed together do not retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(unit_random())
    }
}

/// A uniformly random number in `0..1` from the system RNG (0 if the RNG fails: then there is just no jitter).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 4];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_be_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        for (retry, base) in [(0, 100), (1, 200), (2, 400), (3, 700), (9, 700), (40, 700)] {
            let base = Duration::from_millis(base);
            for _ in 0..50 {
                let wait = policy.backoff(retry);
                assert!(
                    wait >= base / 2 && wait <= base,
                    "retry {retry}: {wait:?} outside {:?}..={base:?}",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let policy = RetryPolicy::default();
        let waits: std::collections::HashSet<_> = (0..20).map(|_| policy.backoff(2)).collect();
        assert!(waits.len() > 1, "20 backoffs were all equal: no jitter");
    }
}
