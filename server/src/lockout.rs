//! Per-device failed-attempt limiter: after `max_failures` failures inside `window`, the device is locked for
//! `lockout`. Kept in memory (a restart clears it); bounded by the number of registered devices that failed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::LockoutPolicy;

#[derive(Debug, Default)]
struct DeviceFailures {
    /// Failure times inside the current window (oldest first).
    recent: Vec<Instant>,
    /// When set, the device is locked until then.
    locked_until: Option<Instant>,
}

/// The failed-attempt limiter.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    devices: Mutex<HashMap<String, DeviceFailures>>,
}

impl Lockout {
    /// A limiter with this policy.
    pub fn new(policy: LockoutPolicy) -> Self {
        Lockout {
            policy,
            devices: Mutex::new(HashMap::new()),
        }
    }

    /// If the device is locked now, how long it stays locked.
    pub fn locked_for(&self, device_id: &str, now: Instant) -> Option<Duration> {
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let until = devices.get(device_id)?.locked_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Records a failure; returns true when this failure locked the device.
    pub fn record_failure(&self, device_id: &str, now: Instant) -> bool {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if devices.len() > 100_000 {
            devices.retain(|_, d| d.locked_until.is_some_and(|u| u > now) || !d.recent.is_empty());
        }
        let entry = devices.entry(device_id.to_owned()).or_default();
        let window = self.policy.window;
        entry.recent.retain(|t| now.duration_since(*t) < window);
        entry.recent.push(now);
        if entry.recent.len() as u32 >= self.policy.max_failures {
            entry.recent.clear();
            entry.locked_until = Some(now + self.policy.lockout);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_in_window_and_unlocks_later() {
        let policy = LockoutPolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(10),
        };
        let l = Lockout::new(policy);
        let t0 = Instant::now();
        assert!(!l.record_failure("d", t0));
        assert!(!l.record_failure("d", t0 + Duration::from_secs(1)));
        assert!(l.locked_for("d", t0).is_none());
        assert!(l.record_failure("d", t0 + Duration::from_secs(2)));
        assert!(l.locked_for("d", t0 + Duration::from_secs(3)).is_some());
        assert!(l.locked_for("other", t0 + Duration::from_secs(3)).is_none());
        assert!(l.locked_for("d", t0 + Duration::from_secs(13)).is_none());
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let policy = LockoutPolicy {
            max_failures: 2,
            window: Duration::from_secs(5),
            lockout: Duration::from_secs(10),
        };
        let l = Lockout::new(policy);
        let t0 = Instant::now();
        assert!(!l.record_failure("d", t0));
        assert!(!l.record_failure("d", t0 + Duration::from_secs(6)));
        assert!(l.record_failure("d", t0 + Duration::from_secs(7)));
    }
}
