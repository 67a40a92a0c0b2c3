//! Rates with their uncertainty: the one-sided Clopper–Pearson upper bound of a binomial rate, and the area under
//! a ROC curve.

use super::EvalError;
use super::metrics::{Scored, roc};

/// The one-sided upper confidence bound (`confidence`, e.g. 0.95) of a rate seen as `k` events in `n` trials, by
/// Clopper–Pearson: the `p` at which `P(X ≤ k | n, p) = 1 − confidence`. `k = 0` gives `1 − (1 − confidence)^(1/n)`
/// (0.0998 % for 3,000 trials at 95 %); `k = n` gives 1; `n = 0` gives 1 (nothing is known).
pub fn clopper_pearson_upper(k: u64, n: u64, confidence: f64) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let alpha = 1.0 - confidence;
    if k == 0 {
        return 1.0 - alpha.powf(1.0 / n as f64);
    }
    // P(X <= k) falls as p grows: bisect on p (60 halvings: far below any printed digit).
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if binomial_cdf(k, n, mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// `P(X ≤ k)` for `X ~ Binomial(n, p)`, summed in log space (stable for large `n`).
fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // log C(n, 0) = 0; log C(n, i) = log C(n, i-1) + ln(n-i+1) - ln(i).
    let mut log_c = 0.0f64;
    let mut sum = 0.0f64;
    for i in 0..=k {
        if i > 0 {
            log_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        sum += (log_c + i as f64 * lp + (n - i) as f64 * lq).exp();
    }
    sum.min(1.0)
}

/// Area under the ROC curve of `scored` (`same` = the positive class, accepted when `score ≥ threshold`), by the
/// trapezoid rule over every threshold: the probability that a random positive outscores a random negative (ties
/// count half).
pub fn auc(scored: &[Scored]) -> Result<f64, EvalError> {
    let points = roc(scored)?;
    let mut pts: Vec<(f64, f64)> = points.iter().map(|p| (p.far, p.tar)).collect();
    pts.push((0.0, 0.0));
    pts.push((1.0, 1.0));
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    Ok(pts
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) * 0.5)
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_events_bound_is_the_rule_of_three_ish() {
        let u = clopper_pearson_upper(0, 3000, 0.95);
        assert!((u - (1.0 - 0.05f64.powf(1.0 / 3000.0))).abs() < 1e-12);
        assert!(u < 0.001 && u > 0.00099, "{u}");
        assert_eq!(clopper_pearson_upper(0, 0, 0.95), 1.0);
        assert_eq!(clopper_pearson_upper(5, 5, 0.95), 1.0);
    }

    #[test]
    fn bound_matches_published_values() {
        // One-sided 95 % Clopper–Pearson upper bounds (= the beta quantile Beta(0.95; k+1, n-k)).
        let cases = [(1, 10, 0.39416), (5, 100, 0.10225), (10, 500, 0.03369)];
        for (k, n, want) in cases {
            let got = clopper_pearson_upper(k, n, 0.95);
            assert!((got - want).abs() < 2e-5, "k={k} n={n}: {got} vs {want}");
        }
        assert!(clopper_pearson_upper(3, 100, 0.95) > 0.03);
    }

    #[test]
    fn auc_of_separated_mixed_and_tied_scores() {
        let s = |score: f32, same: bool| Scored { score, same };
        let separated = [s(0.9, true), s(0.8, true), s(0.2, false), s(0.1, false)];
        assert!((auc(&separated).unwrap() - 1.0).abs() < 1e-12);
        let inverted = [s(0.1, true), s(0.9, false)];
        assert!(auc(&inverted).unwrap().abs() < 1e-12);
        let tied = [s(0.5, true), s(0.5, false)];
        assert!((auc(&tied).unwrap() - 0.5).abs() < 1e-12);
        let mixed = [s(0.9, true), s(0.4, true), s(0.6, false), s(0.1, false)];
        assert!((auc(&mixed).unwrap() - 0.75).abs() < 1e-12);
    }
}
