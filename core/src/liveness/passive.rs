//! The passive check's sampling and session aggregate: which frames get a fused MiniFASNet score (one good face,
//! at most `passive.max_samples`, at least `passive.every_n_frames` apart) and how the samples become one session
//! score (`passive.aggregate`). The machine and `facepay eval liveness` share this code, so the calibration
//! measures exactly what a session decides on.

use serde::{Deserialize, Serialize};

use super::gates::frame_is_good;
use super::observation::Observation;
use super::policy::LivenessPolicy;

/// Most samples a session can hold (the policy's `max_samples` is validated against it).
pub const MAX_PASSIVE_SAMPLES: usize = 32;

/// How a session's passive samples become its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassiveAggregate {
    /// The arithmetic mean.
    Mean,
    /// The median (the mean of the middle two for an even count).
    Median,
    /// The mean without the lowest and the highest quarter of the samples (none dropped below 4 samples).
    TrimmedMean,
}

/// A session's passive samples (bounded: a fixed array).
#[derive(Debug, Clone, Copy)]
pub struct PassiveSamples {
    scores: [f32; MAX_PASSIVE_SAMPLES],
    count: usize,
    last_frame: Option<u64>,
}

impl Default for PassiveSamples {
    fn default() -> Self {
        Self {
            scores: [0.0; MAX_PASSIVE_SAMPLES],
            count: 0,
            last_frame: None,
        }
    }
}

impl PassiveSamples {
    /// Whether frame `index`, seen as `obs`, should be scored: one good face (lit, sharp, large, frontal), fewer
    /// than `passive.max_samples` taken, the last one at least `passive.every_n_frames` frames back.
    pub fn wants(&self, policy: &LivenessPolicy, index: u64, obs: &Observation) -> bool {
        let p = &policy.passive;
        self.count < (p.max_samples as usize).min(MAX_PASSIVE_SAMPLES)
            && self
                .last_frame
                .is_none_or(|last| index.saturating_sub(last) >= p.every_n_frames)
            && obs.face_count == 1
            && obs.face.as_ref().is_some_and(|f| frame_is_good(f, policy))
    }

    /// Adds the score of frame `index` (clamped to 0..1; a non-finite score or a full set is ignored).
    pub fn add(&mut self, index: u64, score: f32) {
        if score.is_finite() && self.count < MAX_PASSIVE_SAMPLES {
            self.scores[self.count] = score.clamp(0.0, 1.0);
            self.count += 1;
            self.last_frame = Some(index);
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u32 {
        self.count as u32
    }

    /// The session score by `method` (`None` without samples).
    pub fn aggregate(&self, method: PassiveAggregate) -> Option<f32> {
        let mut v = self.scores;
        let s = &mut v[..self.count];
        if s.is_empty() {
            return None;
        }
        s.sort_by(f32::total_cmp);
        let mean = |s: &[f32]| s.iter().map(|&x| f64::from(x)).sum::<f64>() / s.len() as f64;
        let n = s.len();
        Some(match method {
            PassiveAggregate::Mean => mean(s) as f32,
            PassiveAggregate::Median if n % 2 == 1 => s[n / 2],
            PassiveAggregate::Median => {
                ((f64::from(s[n / 2 - 1]) + f64::from(s[n / 2])) * 0.5) as f32
            }
            PassiveAggregate::TrimmedMean => {
                let cut = n / 4;
                mean(&s[cut..n - cut]) as f32
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_resist_one_outlier_as_documented() {
        let mut p = PassiveSamples::default();
        for (i, s) in [0.99, 0.98, 0.97, 0.10, 0.99, 0.98, 0.96, 0.99]
            .into_iter()
            .enumerate()
        {
            p.add(i as u64 * 3, s);
        }
        let mean = p.aggregate(PassiveAggregate::Mean).unwrap();
        let median = p.aggregate(PassiveAggregate::Median).unwrap();
        let trimmed = p.aggregate(PassiveAggregate::TrimmedMean).unwrap();
        assert!((mean - 0.87).abs() < 1e-3, "{mean}");
        assert!((median - 0.98).abs() < 1e-6, "{median}");
        // 8 samples: the lowest 2 and highest 2 dropped → mean of 0.97, 0.98, 0.98, 0.99.
        assert!((trimmed - 0.98).abs() < 1e-3, "{trimmed}");
        assert_eq!(
            PassiveSamples::default().aggregate(PassiveAggregate::Median),
            None
        );
        p.add(99, f32::NAN);
        assert_eq!(p.count(), 8);
    }
}
