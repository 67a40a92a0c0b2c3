//! Verification metrics over scored pairs: accuracy, best threshold, ROC, TAR at fixed FAR, EER, k-fold.
//!
//! Convention everywhere: a pair is *accepted* (predicted "same person") when `score >= threshold`; higher scores
//! mean more alike (cosine similarity of unit embeddings). Thresholds are `f64` so that a threshold chosen between
//! two adjacent `f32` scores lies strictly between them.

use super::EvalError;

/// The similarity score of one pair and whether the pair really is the same person.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Similarity (higher = more alike).
    pub score: f32,
    /// Ground truth: both images show the same person.
    pub same: bool,
}

/// A threshold together with the accuracy it gives on the pairs it was chosen on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// Accept a pair when `score >= threshold`.
    pub threshold: f64,
    /// Fraction of pairs classified correctly at that threshold.
    pub accuracy: f64,
}

/// One point of the ROC curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RocPoint {
    /// Accept when `score >= threshold` (`+inf` for the reject-everything point).
    pub threshold: f64,
    /// True accept rate: accepted matched pairs / matched pairs.
    pub tar: f64,
    /// False accept rate: accepted mismatched pairs / mismatched pairs.
    pub far: f64,
}

/// The outcome of one fold of the k-fold protocol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldResult {
    /// Threshold chosen (max accuracy) on all the other folds.
    pub threshold: f64,
    /// Accuracy of that threshold on this fold.
    pub accuracy: f64,
}

/// The k-fold protocol's result: one entry per fold plus their summary.
#[derive(Clone, Debug, PartialEq)]
pub struct KFold {
    /// Per fold, in fold order.
    pub folds: Vec<FoldResult>,
    /// Mean of the fold accuracies.
    pub mean_accuracy: f64,
    /// Population standard deviation (ddof = 0, as the usual LFW scripts) of the fold accuracies.
    pub std_accuracy: f64,
    /// Mean of the fold thresholds.
    pub mean_threshold: f64,
}

/// Counts matched and mismatched pairs; refuses NaN scores and a missing class.
fn class_counts(pairs: &[Scored], metric: &'static str) -> Result<(usize, usize), EvalError> {
    if let Some(index) = pairs.iter().position(|p| p.score.is_nan()) {
        return Err(EvalError::NanScore { index });
    }
    let pos = pairs.iter().filter(|p| p.same).count();
    let neg = pairs.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(EvalError::NeedBothClasses { metric });
    }
    Ok((pos, neg))
}

/// Groups of equal scores, in ascending score order: `(score, matched count, mismatched count)`.
fn score_groups(pairs: &[Scored]) -> Vec<(f32, usize, usize)> {
    let mut sorted: Vec<Scored> = pairs.to_vec();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut groups: Vec<(f32, usize, usize)> = Vec::new();
    for p in sorted {
        match groups.last_mut() {
            Some(g) if g.0 == p.score => {
                if p.same {
                    g.1 += 1
                } else {
                    g.2 += 1
                }
            }
            _ => groups.push((p.score, usize::from(p.same), usize::from(!p.same))),
        }
    }
    groups
}

/// Fraction of `pairs` classified correctly when accepting `score >= threshold`.
pub fn accuracy(pairs: &[Scored], threshold: f64) -> Result<f64, EvalError> {
    if pairs.is_empty() {
        return Err(EvalError::NeedBothClasses { metric: "accuracy" });
    }
    if let Some(index) = pairs.iter().position(|p| p.score.is_nan()) {
        return Err(EvalError::NanScore { index });
    }
    let correct = pairs
        .iter()
        .filter(|p| (f64::from(p.score) >= threshold) == p.same)
        .count();
    Ok(correct as f64 / pairs.len() as f64)
}

/// The threshold of maximum accuracy on `pairs`.
///
/// Candidates: the lowest score (accept all), the midpoint between each two adjacent distinct scores, and the
/// highest score + 1 (reject all). When several candidates reach the best accuracy, the lower median of them is
/// taken (deterministic, and away from the edge of the plateau).
pub fn best_threshold(pairs: &[Scored]) -> Result<Threshold, EvalError> {
    let (pos, _) = class_counts(pairs, "threshold selection")?;
    let groups = score_groups(pairs);
    // Candidate k passes the k lowest groups (rejects them); k = 0 accepts everything.
    let mut correct = pos as i64;
    let mut best = correct;
    let mut best_at: Vec<usize> = vec![0];
    for (k, g) in groups.iter().enumerate() {
        correct += g.2 as i64 - g.1 as i64;
        if correct > best {
            best = correct;
            best_at.clear();
        }
        if correct == best {
            best_at.push(k + 1);
        }
    }
    let k = best_at[(best_at.len() - 1) / 2];
    let threshold = if k == 0 {
        f64::from(groups[0].0)
    } else if k == groups.len() {
        f64::from(groups[k - 1].0) + 1.0
    } else {
        (f64::from(groups[k - 1].0) + f64::from(groups[k].0)) / 2.0
    };
    Ok(Threshold {
        threshold,
        accuracy: best as f64 / pairs.len() as f64,
    })
}

/// The ROC curve: the reject-all point (threshold `+inf`), then one point per distinct score from the highest
/// down (threshold = that score), ending at TAR = FAR = 1.
pub fn roc(pairs: &[Scored]) -> Result<Vec<RocPoint>, EvalError> {
    let (pos, neg) = class_counts(pairs, "ROC")?;
    let groups = score_groups(pairs);
    let mut points = Vec::with_capacity(groups.len() + 1);
    points.push(RocPoint {
        threshold: f64::INFINITY,
        tar: 0.0,
        far: 0.0,
    });
    let (mut tp, mut fp) = (0usize, 0usize);
    for g in groups.iter().rev() {
        tp += g.1;
        fp += g.2;
        points.push(RocPoint {
            threshold: f64::from(g.0),
            tar: tp as f64 / pos as f64,
            far: fp as f64 / neg as f64,
        });
    }
    Ok(points)
}

/// The highest TAR whose FAR is at most `far` (read off [`roc`]), with its threshold.
///
/// At most `floor(far × mismatched pairs)` false accepts are allowed: with 500 mismatched pairs and FAR 1e-3 that
/// is zero, so the figure means "TAR with no false accept at all".
pub fn tar_at_far(pairs: &[Scored], far: f64) -> Result<RocPoint, EvalError> {
    if !(far > 0.0 && far <= 1.0) {
        return Err(EvalError::FarTarget(far));
    }
    let (_, neg) = class_counts(pairs, "TAR at FAR")?;
    // The tolerance keeps e.g. 0.01 × 500 from flooring to 4.
    let allowed = (far * neg as f64 + 1e-9).floor() / neg as f64;
    let curve = roc(pairs)?;
    let point = curve
        .iter()
        .take_while(|p| p.far <= allowed)
        .last()
        .copied();
    Ok(point.unwrap_or(curve[0]))
}

/// Equal error rate: where FAR = FRR (= 1 − TAR), linearly interpolated between the two ROC points around the
/// crossing.
pub fn eer(pairs: &[Scored]) -> Result<f64, EvalError> {
    let curve = roc(pairs)?;
    let diff = |p: &RocPoint| p.far - (1.0 - p.tar);
    // diff goes from −1 (reject all) to +1 (accept all) and never decreases along the curve.
    let i = curve
        .iter()
        .position(|p| diff(p) >= 0.0)
        .unwrap_or(curve.len() - 1);
    if i == 0 {
        return Ok(curve[0].far);
    }
    let (a, b) = (&curve[i - 1], &curve[i]);
    let (da, db) = (diff(a), diff(b));
    let alpha = -da / (db - da);
    Ok(a.far + alpha * (b.far - a.far))
}

/// The k-fold protocol: for each fold, the threshold of best accuracy on all the other folds, applied to it.
/// `fold_of[i]` is the fold (0-based) of `pairs[i]`; folds are `0..=max(fold_of)`.
pub fn k_fold(pairs: &[Scored], fold_of: &[usize]) -> Result<KFold, EvalError> {
    if pairs.len() != fold_of.len() {
        return Err(EvalError::Folds(format!(
            "{} pairs but {} fold labels",
            pairs.len(),
            fold_of.len()
        )));
    }
    let k = fold_of.iter().max().map_or(0, |m| m + 1);
    if k < 2 {
        return Err(EvalError::Folds(format!("needs at least 2 folds, got {k}")));
    }
    let mut folds = Vec::with_capacity(k);
    for f in 0..k {
        let in_fold = |want: bool| -> Vec<Scored> {
            pairs
                .iter()
                .zip(fold_of)
                .filter(|&(_, &fold)| (fold == f) == want)
                .map(|(p, _)| *p)
                .collect()
        };
        let (test, train) = (in_fold(true), in_fold(false));
        if test.is_empty() {
            return Err(EvalError::Folds(format!("fold {f} has no pairs")));
        }
        let threshold = best_threshold(&train)?.threshold;
        folds.push(FoldResult {
            threshold,
            accuracy: accuracy(&test, threshold)?,
        });
    }
    let n = k as f64;
    let mean_accuracy = folds.iter().map(|f| f.accuracy).sum::<f64>() / n;
    let var = folds
        .iter()
        .map(|f| (f.accuracy - mean_accuracy).powi(2))
        .sum::<f64>()
        / n;
    let mean_threshold = folds.iter().map(|f| f.threshold).sum::<f64>() / n;
    Ok(KFold {
        folds,
        mean_accuracy,
        std_accuracy: var.sqrt(),
        mean_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(pos: &[f32], neg: &[f32]) -> Vec<Scored> {
        let mut v: Vec<Scored> = pos
            .iter()
            .map(|&score| Scored { score, same: true })
            .collect();
        v.extend(neg.iter().map(|&score| Scored { score, same: false }));
        v
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn accuracy_counts_accepts_at_or_above_threshold() {
        let p = scored(&[0.9, 0.5], &[0.5, 0.1]);
        // At 0.5: 0.9 ✓, 0.5 (same) ✓ accepted, 0.5 (diff) ✗ accepted, 0.1 ✓ → 3/4.
        assert!(close(accuracy(&p, 0.5).unwrap(), 0.75));
        assert!(close(accuracy(&p, 0.6).unwrap(), 0.75));
        assert!(close(accuracy(&p, 0.2).unwrap(), 0.75));
        assert!(close(accuracy(&p, 0.95).unwrap(), 0.5));
    }

    #[test]
    fn best_threshold_separable_is_midpoint_gap() {
        let p = scored(&[0.9, 0.8, 0.7], &[0.6, 0.2, 0.1]);
        let t = best_threshold(&p).unwrap();
        assert!(close(t.threshold, (0.7f32 as f64 + 0.6f32 as f64) / 2.0));
        assert!(close(t.accuracy, 1.0));
    }

    #[test]
    fn best_threshold_ties_take_lower_median() {
        // Sorted: .1n .3n .4p .5n .8p .9p → correct counts 3,4,5,4,5,4,3: best 5 at 0.35 and 0.65.
        let p = scored(&[0.9, 0.8, 0.4], &[0.5, 0.3, 0.1]);
        let t = best_threshold(&p).unwrap();
        assert!(
            close(t.threshold, (0.3f32 as f64 + 0.4f32 as f64) / 2.0),
            "{t:?}"
        );
        assert!(close(t.accuracy, 5.0 / 6.0));
    }

    #[test]
    fn best_threshold_edges_accept_all_or_reject_all() {
        // Three matched at the bottom, one mismatched on top: accept-all (3/4) beats any split.
        let p = scored(&[0.1, 0.2, 0.3], &[0.9]);
        let t = best_threshold(&p).unwrap();
        assert!(close(t.accuracy, 0.75));
        assert!(close(t.threshold, 0.1f32 as f64));
        // One matched pair below three mismatched: reject-all (3/4) is the unique best.
        let p = scored(&[0.1], &[0.5, 0.6, 0.95]);
        let t = best_threshold(&p).unwrap();
        assert!(close(t.accuracy, 0.75));
        assert!(close(t.threshold, 0.95f32 as f64 + 1.0));
    }

    #[test]
    fn roc_steps_through_distinct_scores() {
        let p = scored(&[0.9, 0.5], &[0.5, 0.1]);
        let r = roc(&p).unwrap();
        let got: Vec<(f64, f64)> = r.iter().map(|q| (q.tar, q.far)).collect();
        assert_eq!(got, vec![(0.0, 0.0), (0.5, 0.0), (1.0, 0.5), (1.0, 1.0)]);
        assert!(r[0].threshold.is_infinite());
        assert!(close(r[2].threshold, 0.5));
    }

    #[test]
    fn tar_at_far_allows_floor_of_far_times_negatives() {
        let p = scored(&[0.9, 0.8, 0.7, 0.3], &[0.75, 0.6, 0.2, 0.1]);
        // FAR 0.25 → one false accept allowed: threshold 0.7 accepts .9 .8 .7 and .75 → TAR 3/4.
        let q = tar_at_far(&p, 0.25).unwrap();
        assert!(
            close(q.tar, 0.75) && close(q.far, 0.25) && close(q.threshold, 0.7f32 as f64),
            "{q:?}"
        );
        // FAR 0.1 → none allowed: threshold 0.8 → TAR 1/2.
        let q = tar_at_far(&p, 0.1).unwrap();
        assert!(
            close(q.tar, 0.5) && q.far == 0.0 && close(q.threshold, 0.8f32 as f64),
            "{q:?}"
        );
        // 0.01 × 500 must allow exactly 5 false accepts despite floating point.
        let mut many = scored(&[1.0], &[]);
        many.extend((0..500).map(|i| Scored {
            score: 0.5 + i as f32 * 1e-3,
            same: false,
        }));
        assert!(close(tar_at_far(&many, 0.01).unwrap().far, 5.0 / 500.0));
        assert!(matches!(tar_at_far(&p, 0.0), Err(EvalError::FarTarget(_))));
    }

    #[test]
    fn tar_at_far_when_top_score_is_an_impostor_is_zero() {
        let p = scored(&[0.5, 0.4], &[0.9, 0.1]);
        let q = tar_at_far(&p, 0.4).unwrap();
        assert_eq!((q.tar, q.far), (0.0, 0.0));
    }

    #[test]
    fn eer_exact_crossing_on_a_roc_point() {
        // Points (FAR, FRR): (0,1) (0,.75) (0,.5) (.25,.5) (.25,.25) → crossing exactly at .25.
        let p = scored(&[0.9, 0.8, 0.7, 0.3], &[0.75, 0.6, 0.2, 0.1]);
        assert!(close(eer(&p).unwrap(), 0.25));
    }

    #[test]
    fn eer_interpolates_between_points() {
        // (FAR, FRR): (0,1) (0,2/3) (.5,2/3) (.5,1/3): FAR−FRR −1/6 → +1/6, midway: FAR .5, FRR .5.
        let p = scored(&[0.9, 0.7, 0.6], &[0.8, 0.5]);
        assert!(close(eer(&p).unwrap(), 0.5));
        // Perfect separation: EER 0.
        let p = scored(&[0.9, 0.8], &[0.2, 0.1]);
        assert!(close(eer(&p).unwrap(), 0.0));
    }

    #[test]
    fn k_fold_two_folds_by_hand() {
        // Dyadic scores, so midpoints are exact. Fold 0: pos .875 .75, neg .25 .125; fold 1: pos .625 .375,
        // neg .5 .3125.
        let p = scored(&[0.875, 0.75, 0.625, 0.375], &[0.25, 0.125, 0.5, 0.3125]);
        let folds = [0, 0, 1, 1, 0, 0, 1, 1];
        let k = k_fold(&p, &folds).unwrap();
        // Fold 0 tested with the threshold from fold 1 (tie .34375 / .5625 → lower): all right.
        assert!(close(k.folds[0].threshold, 0.34375), "{k:?}");
        assert!(close(k.folds[0].accuracy, 1.0));
        // Fold 1 tested at 0.5 (midpoint of .25 and .75): .375 rejected, .5 (mismatched) accepted → 1/2.
        assert!(close(k.folds[1].threshold, 0.5));
        assert!(close(k.folds[1].accuracy, 0.5));
        assert!(close(k.mean_accuracy, 0.75));
        assert!(close(k.std_accuracy, 0.25));
        assert!(close(k.mean_threshold, (0.34375 + 0.5) / 2.0));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert!(matches!(
            best_threshold(&scored(&[0.5], &[])),
            Err(EvalError::NeedBothClasses { .. })
        ));
        assert!(matches!(
            eer(&scored(&[], &[0.5])),
            Err(EvalError::NeedBothClasses { .. })
        ));
        assert!(matches!(
            roc(&scored(&[f32::NAN], &[0.1])),
            Err(EvalError::NanScore { index: 0 })
        ));
        assert!(matches!(
            accuracy(&[], 0.5),
            Err(EvalError::NeedBothClasses { .. })
        ));
        let p = scored(&[0.9], &[0.1]);
        assert!(matches!(k_fold(&p, &[0, 0]), Err(EvalError::Folds(_))));
        assert!(matches!(k_fold(&p, &[0]), Err(EvalError::Folds(_))));
        // A fold whose complement lacks a class cannot choose a threshold.
        assert!(matches!(
            k_fold(&p, &[0, 1]),
            Err(EvalError::NeedBothClasses { .. })
        ));
    }
}
