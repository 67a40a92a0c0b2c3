//! Summary statistics of repeated timings.

use std::fmt;

/// Median and 95th percentile of a set of durations in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timings {
    /// Number of measurements.
    pub count: usize,
    /// Median (mean of the two middle values for an even count); NaN when there are none.
    pub median: f64,
    /// 95th percentile, nearest-rank (the smallest value with at least 95 % of the values at or below it).
    pub p95: f64,
}

impl Timings {
    /// Summarises `ms` (order does not matter; NaN values sort last).
    pub fn from_ms(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        if n == 0 {
            return Self {
                count: 0,
                median: f64::NAN,
                p95: f64::NAN,
            };
        }
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        let rank = (0.95 * n as f64).ceil() as usize;
        Self {
            count: n,
            median,
            p95: ms[rank.clamp(1, n) - 1],
        }
    }
}

impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            write!(f, "none")
        } else {
            write!(
                f,
                "{} × {:.2} ms median ({:.2} p95)",
                self.count, self.median, self.p95
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        assert_eq!(Timings::from_ms(vec![3.0, 1.0, 2.0]).median, 2.0);
        assert_eq!(Timings::from_ms(vec![4.0, 1.0, 3.0, 2.0]).median, 2.5);
    }

    #[test]
    fn p95_is_nearest_rank() {
        // 1..=100: the 95th value is 95; 1..=20: ceil(19) = 19th value.
        let t = Timings::from_ms((1..=100).rev().map(f64::from).collect());
        assert_eq!((t.count, t.p95), (100, 95.0));
        assert_eq!(
            Timings::from_ms((1..=20).map(f64::from).collect()).p95,
            19.0
        );
        assert_eq!(Timings::from_ms(vec![7.0]).p95, 7.0);
    }

    #[test]
    fn empty_is_nan_and_prints_none() {
        let t = Timings::from_ms(Vec::new());
        assert!(t.median.is_nan() && t.count == 0);
        assert_eq!(t.to_string(), "none");
    }
}
