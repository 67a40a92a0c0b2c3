//! Prometheus metrics in the text exposition format, hand-rolled: request counts by route and status,
//! payments recorded, rejections by error code, and a latency histogram of `POST /v1/checkout/pay`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the pay latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    payments_recorded: AtomicU64,
    idempotent_replays: AtomicU64,
    pay_buckets: [AtomicU64; BUCKETS.len()],
    pay_count: AtomicU64,
    pay_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts one finished request.
    pub fn request(&self, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((route.to_owned(), status)).or_default() += 1;
    }

    /// Counts one rejection by code.
    pub fn rejection(&self, code: &'static str) {
        let mut map = self.rejections.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(code).or_default() += 1;
    }

    /// Counts one recorded payment.
    pub fn payment_recorded(&self) {
        self.payments_recorded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one idempotent replay.
    pub fn idempotent_replay(&self) {
        self.idempotent_replays.fetch_add(1, Ordering::Relaxed);
    }

    /// Observes the duration of one pay request.
    pub fn observe_pay(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.pay_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.pay_count.fetch_add(1, Ordering::Relaxed);
        self.pay_sum_micros.fetch_add(
            elapsed.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP facepay_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE facepay_http_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "facepay_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP facepay_rejections_total Rejected requests by error code.\n");
        out.push_str("# TYPE facepay_rejections_total counter\n");
        for (code, n) in self
            .rejections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "facepay_rejections_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP facepay_payments_recorded_total Payments verified and recorded.\n");
        out.push_str("# TYPE facepay_payments_recorded_total counter\n");
        let _ = writeln!(
            out,
            "facepay_payments_recorded_total {}",
            self.payments_recorded.load(Ordering::Relaxed)
        );
        out.push_str("# HELP facepay_idempotent_replays_total Pay requests answered from the idempotency store.\n");
        out.push_str("# TYPE facepay_idempotent_replays_total counter\n");
        let _ = writeln!(
            out,
            "facepay_idempotent_replays_total {}",
            self.idempotent_replays.load(Ordering::Relaxed)
        );
        out.push_str("# HELP facepay_pay_duration_seconds Latency of POST /v1/checkout/pay.\n");
        out.push_str("# TYPE facepay_pay_duration_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.pay_buckets) {
            let _ = writeln!(
                out,
                "facepay_pay_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.pay_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "facepay_pay_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.pay_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "facepay_pay_duration_seconds_sum {sum}");
        let _ = writeln!(out, "facepay_pay_duration_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histogram() {
        let m = Metrics::default();
        m.request("/v1/checkout/pay", 201);
        m.request("/v1/checkout/pay", 201);
        m.rejection("nonce_reused");
        m.payment_recorded();
        m.observe_pay(Duration::from_millis(3));
        m.observe_pay(Duration::from_millis(30));
        let text = m.render();
        assert!(
            text.contains(
                "facepay_http_requests_total{route=\"/v1/checkout/pay\",status=\"201\"} 2"
            )
        );
        assert!(text.contains("facepay_rejections_total{code=\"nonce_reused\"} 1"));
        assert!(text.contains("facepay_payments_recorded_total 1"));
        assert!(text.contains("facepay_pay_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("facepay_pay_duration_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("facepay_pay_duration_seconds_count 2"));
    }
}
