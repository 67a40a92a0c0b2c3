//! On-device matching: probe embedding(s) from the payment selfie against the enrolled [`Template`].
//!
//! The score is the **mean** cosine similarity over every (probe, template embedding) pair, which for
//! unit vectors equals the dot product of the mean probe with the mean template embedding. Why the mean
//! and not the max: the threshold is calibrated on single image pairs (LFW, `[calibration]` in
//! `models/manifest.toml`). Taking the max over the 3-5 template embeddings gives an impostor 3-5 tries
//! at that threshold, multiplying the false-accept rate roughly by that factor; the mean keeps the
//! single-pair expectation and only shrinks the spread, so the false-accept rate stays at or below the
//! calibrated one while a single poor enrolment or probe frame is averaged out instead of deciding.
//!
//! The threshold is an input: the caller reads it from the model manifest's `[calibration]` table.

use serde::{Deserialize, Serialize};

use crate::template::{Template, dot, l2_norm};

/// The outcome of one match: what goes into the signed payment evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchResult {
    /// Mean cosine similarity of the probes to the template embeddings, in [-1, 1].
    pub score: f32,
    /// The decision threshold used (from the embedder's calibration).
    pub threshold: f32,
    /// `score >= threshold`.
    pub matched: bool,
}

/// Why a match could not be computed (a non-match is not an error: it is `matched == false`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchError {
    /// No probe embedding was given.
    #[error("no probe embedding to match")]
    NoProbe,
    /// The template was made by another embedder (or other weights): the shopper must enrol again.
    #[error(
        "template was enrolled with model `{template}` but the probe comes from `{probe}`; re-enrolment needed"
    )]
    ModelMismatch {
        /// The template's model id.
        template: String,
        /// The probe's model id.
        probe: String,
    },
    /// A probe's length differs from the template's embedding dimension.
    #[error("probe {index} has dimension {found}, the template has {expected}")]
    DimensionMismatch {
        /// Which probe (0-based).
        index: usize,
        /// The template's dimension.
        expected: usize,
        /// The probe's length.
        found: usize,
    },
    /// A probe holds NaN or infinity.
    #[error("probe {index} holds a non-finite value")]
    NonFiniteProbe {
        /// Which probe (0-based).
        index: usize,
    },
    /// A probe is all zeros, so it has no direction to compare.
    #[error("probe {index} has zero norm")]
    ZeroNormProbe {
        /// Which probe (0-based).
        index: usize,
    },
    /// The threshold is not a finite number in [-1, 1].
    #[error("match threshold {0} is not a cosine similarity in [-1, 1]")]
    InvalidThreshold(f32),
}

/// Matches probe embeddings made by `probe_model` against `template` at `threshold`.
///
/// Probes need not be unit-norm (each is normalised), but must be finite, non-zero and of the
/// template's dimension; `probe_model` must equal the template's model id.
pub fn match_template<P: AsRef<[f32]>>(
    template: &Template,
    probe_model: &str,
    probes: &[P],
    threshold: f32,
) -> Result<MatchResult, MatchError> {
    if !threshold.is_finite() || !(-1.0..=1.0).contains(&threshold) {
        return Err(MatchError::InvalidThreshold(threshold));
    }
    if template.model() != probe_model {
        return Err(MatchError::ModelMismatch {
            template: template.model().to_owned(),
            probe: probe_model.to_owned(),
        });
    }
    if probes.is_empty() {
        return Err(MatchError::NoProbe);
    }
    let expected = template.dimension();
    let mut total = 0.0f64;
    for (index, probe) in probes.iter().enumerate() {
        let probe = probe.as_ref();
        if probe.len() != expected {
            return Err(MatchError::DimensionMismatch {
                index,
                expected,
                found: probe.len(),
            });
        }
        if probe.iter().any(|v| !v.is_finite()) {
            return Err(MatchError::NonFiniteProbe { index });
        }
        let norm = l2_norm(probe);
        if norm == 0.0 {
            return Err(MatchError::ZeroNormProbe { index });
        }
        for reference in template.embeddings() {
            total += dot(probe, reference) / norm;
        }
    }
    let pairs = (probes.len() * template.embeddings().len()) as f64;
    let score = ((total / pairs) as f32).clamp(-1.0, 1.0);
    Ok(MatchResult {
        score,
        threshold,
        matched: score >= threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::enrol_at;

    const DIM: usize = 192;
    const MODEL: &str = "mobilefacenet@0123456789ab";
    /// The DevTrain threshold noted in the shared model notes, until the manifest's calibration lands.
    const THRESHOLD: f32 = 0.405;
    /// How strongly each template embedding leans on the shared direction e0 (pairwise similarity A²).
    const A: f32 = 0.9;

    fn basis(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i] = 1.0;
        v
    }

    /// `c·e_i + sqrt(1 - c²)·e_j`: a unit vector with cosine `c` to `e_i`, orthogonal to every other basis vector.
    fn mix(i: usize, c: f32, j: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i] = c;
        v[j] = (1.0 - c * c).sqrt();
        v
    }

    /// Three embeddings `A·e0 + sqrt(1-A²)·e_k`, k = 1..3: each has cosine A to e0 and A² to the others.
    fn template() -> Template {
        enrol_at((1..=3).map(|k| mix(0, A, k)).collect(), MODEL, 1)
            .expect("valid synthetic enrolment")
    }

    #[test]
    fn genuine_probe_scores_the_mean_cosine_and_matches() {
        let result = match_template(&template(), MODEL, &[basis(0)], THRESHOLD).unwrap();
        assert!((result.score - A).abs() < 1e-5, "score {}", result.score);
        assert!(result.matched);
        assert_eq!(result.threshold, THRESHOLD);
    }

    #[test]
    fn score_is_the_mean_over_template_embeddings_not_the_max() {
        // The probe equals template embedding 0: cosine 1 with it, A² with the two others.
        let probe = mix(0, A, 1);
        let result = match_template(&template(), MODEL, &[probe], THRESHOLD).unwrap();
        let mean = (1.0 + 2.0 * A * A) / 3.0;
        assert!(
            (result.score - mean).abs() < 1e-5,
            "score {} expected mean {mean}",
            result.score
        );
        assert!(
            result.score < 0.99,
            "a max over template embeddings would have given 1"
        );
    }

    #[test]
    fn impostor_orthogonal_probe_is_refused() {
        let result = match_template(&template(), MODEL, &[basis(100)], THRESHOLD).unwrap();
        assert!(result.score.abs() < 1e-6);
        assert!(!result.matched);
    }

    #[test]
    fn decision_flips_at_the_threshold() {
        // Probe c·e0 + …·e50 has cosine c·A with each template embedding.
        let just_above = (THRESHOLD + 0.01) / A;
        let just_below = (THRESHOLD - 0.01) / A;
        let above =
            match_template(&template(), MODEL, &[mix(0, just_above, 50)], THRESHOLD).unwrap();
        let below =
            match_template(&template(), MODEL, &[mix(0, just_below, 50)], THRESHOLD).unwrap();
        assert!(
            (above.score - (THRESHOLD + 0.01)).abs() < 1e-5 && above.matched,
            "{above:?}"
        );
        assert!(
            (below.score - (THRESHOLD - 0.01)).abs() < 1e-5 && !below.matched,
            "{below:?}"
        );
    }

    #[test]
    fn several_probes_are_averaged() {
        let probes = [basis(0), basis(100)];
        let result = match_template(&template(), MODEL, &probes, THRESHOLD).unwrap();
        assert!(
            (result.score - A / 2.0).abs() < 1e-5,
            "score {}",
            result.score
        );
        assert!(result.matched);
        let slices: Vec<&[f32]> = probes.iter().map(Vec::as_slice).collect();
        assert_eq!(
            match_template(&template(), MODEL, &slices, THRESHOLD).unwrap(),
            result
        );
    }

    #[test]
    fn probe_scale_does_not_change_the_score() {
        let unit = mix(0, 0.7, 60);
        let a = match_template(&template(), MODEL, std::slice::from_ref(&unit), THRESHOLD).unwrap();
        // Down to tiny and up to the largest finite f32 (whose squares overflow f32): same score.
        for scale in [1e-30, 37.5, f32::MAX] {
            let scaled: Vec<f32> = unit.iter().map(|v| v * scale).collect();
            let b = match_template(&template(), MODEL, &[scaled], THRESHOLD).unwrap();
            assert!(
                (a.score - b.score).abs() < 1e-6,
                "scale {scale}: {} vs {}",
                b.score,
                a.score
            );
        }
    }

    #[test]
    fn typed_errors_for_bad_input() {
        let t = template();
        assert_eq!(
            match_template(&t, "arcface@ffffffffffff", &[basis(0)], THRESHOLD),
            Err(MatchError::ModelMismatch {
                template: MODEL.into(),
                probe: "arcface@ffffffffffff".into()
            })
        );
        let no_probe: [Vec<f32>; 0] = [];
        assert_eq!(
            match_template(&t, MODEL, &no_probe, THRESHOLD),
            Err(MatchError::NoProbe)
        );
        assert_eq!(
            match_template(&t, MODEL, &[basis(0), vec![1.0; 128]], THRESHOLD),
            Err(MatchError::DimensionMismatch {
                index: 1,
                expected: DIM,
                found: 128
            })
        );
        let mut nan = basis(0);
        nan[5] = f32::NAN;
        assert_eq!(
            match_template(&t, MODEL, &[nan], THRESHOLD),
            Err(MatchError::NonFiniteProbe { index: 0 })
        );
        assert_eq!(
            match_template(&t, MODEL, &[vec![0.0; DIM]], THRESHOLD),
            Err(MatchError::ZeroNormProbe { index: 0 })
        );
        for bad in [f32::NAN, f32::INFINITY, 1.5, -1.01] {
            assert!(matches!(
                match_template(&t, MODEL, &[basis(0)], bad),
                Err(MatchError::InvalidThreshold(v)) if v.is_nan() || v == bad
            ));
        }
    }

    #[test]
    fn result_serialises_for_the_evidence() {
        let result = match_template(&template(), MODEL, &[basis(0)], THRESHOLD).unwrap();
        let json = serde_json::to_value(result).unwrap();
        assert_eq!(json["matched"], true);
        assert!((json["threshold"].as_f64().unwrap() - f64::from(THRESHOLD)).abs() < 1e-6);
        assert!((json["score"].as_f64().unwrap() - f64::from(A)).abs() < 1e-5);
    }
}
