//! Failed-attempt accounting and lock-outs, kept in the database so every server instance on it (and a restarted
//! one) sees them: after `max_failures` failures inside `window` a subject is locked for `lockout`. Subjects are
//! the device and its account (failures of payloads the device signed), and the order (failures of requests whose
//! signature does not verify, which anyone holding that order's client token can send: they must not lock the
//! device they name).

use crate::config::LockoutPolicy;

/// Whose failures a rejection counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A registered device.
    Device(String),
    /// A shopper account of a merchant.
    Account {
        /// The merchant.
        merchant_id: String,
        /// The account.
        account_id: String,
    },
    /// An order of a merchant (its client token's holder).
    Order {
        /// The merchant.
        merchant_id: String,
        /// The order.
        order_id: String,
    },
}

impl Subject {
    /// The key in the `lockouts` table.
    pub fn key(&self) -> String {
        match self {
            Subject::Device(id) => device_key(id),
            Subject::Account {
                merchant_id,
                account_id,
            } => format!("account:{merchant_id}/{account_id}"),
            Subject::Order {
                merchant_id,
                order_id,
            } => format!("order:{merchant_id}/{order_id}"),
        }
    }
}

/// The `lockouts` key of a device.
pub fn device_key(device_id: &str) -> String {
    format!("device:{device_id}")
}

/// The limits in milliseconds, as the store's upsert takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    /// Failures that lock.
    pub max_failures: i64,
    /// Counting window.
    pub window_ms: i64,
    /// Lock-out length.
    pub lockout_ms: i64,
}

impl From<LockoutPolicy> for LockoutRule {
    fn from(p: LockoutPolicy) -> Self {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        LockoutRule {
            max_failures: i64::from(p.max_failures.max(1)),
            window_ms: ms(p.window),
            lockout_ms: ms(p.lockout),
        }
    }
}
