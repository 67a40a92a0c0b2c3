//! The chance of a recording passing the challenges: every clip played straight through (none of them follows
//! prompts) under many random nonces from many start frames, over cached observations.

use facepay_core::checkout::protocol::sha256;
use facepay_core::liveness::{
    LivenessMachine, LivenessPolicy, Outcome, challenge_name, challenges_for_nonce, to_hex,
};
use facepay_qa::eval::bounds::clopper_pearson_upper;
use serde::Serialize;

use super::observe::ClipObservations;

/// One passing attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    /// Clip folder name.
    pub clip: String,
    /// The nonce (hex).
    pub nonce: String,
    /// Clip frame the session started at.
    pub start: usize,
    /// The challenges it passed.
    pub challenges: Vec<&'static str>,
}

/// The `"chance"` section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Chance {
    /// Sessions run (nonces × start frames, over every clip).
    pub attempts: u64,
    /// Sessions that passed.
    pub passed: u64,
    /// passed / attempts.
    pub rate: f64,
    /// One-sided 95 % Clopper–Pearson upper bound of the rate.
    pub upper_95: f64,
    /// Whether the passive check took part (`false` with `--active-only`).
    pub passive: bool,
    /// Nonces per start frame.
    pub nonces: u32,
    /// Start frames were every this many frames (frame 0 always).
    pub starts_every: usize,
    /// Every passing attempt.
    pub passing: Vec<Pass>,
}

/// The `i`-th evaluation nonce of `seed`: `SHA-256("facepay eval nonce" || seed || i)` (reproducible; uniformly
/// spread like the server's random nonces as far as the challenge derivation can tell).
pub fn eval_nonce(seed: u64, i: u64) -> [u8; 32] {
    let mut msg = b"facepay eval nonce".to_vec();
    msg.extend_from_slice(&seed.to_be_bytes());
    msg.extend_from_slice(&i.to_be_bytes());
    sha256(&msg)
}

/// Plays every clip from every `starts_every`-th frame under `nonces` nonces each.
pub fn measure(
    clips: &[ClipObservations],
    policy: &LivenessPolicy,
    nonces: u32,
    starts_every: usize,
    passive: bool,
    seed: u64,
) -> Chance {
    let (mut attempts, mut passed, mut passing) = (0u64, 0u64, Vec::new());
    let mut counter = 0u64;
    for clip in clips {
        for start in (0..clip.len()).step_by(starts_every.max(1)) {
            for _ in 0..nonces {
                let nonce = eval_nonce(seed, counter);
                counter += 1;
                let challenges = challenges_for_nonce(&nonce);
                let machine =
                    LivenessMachine::new(policy.clone(), nonce, challenges.clone(), passive);
                let run = clip.run(machine, start);
                attempts += 1;
                if run
                    .verdict
                    .as_ref()
                    .is_some_and(|v| v.outcome == Outcome::Passed)
                {
                    passed += 1;
                    passing.push(Pass {
                        clip: clip.name.clone(),
                        nonce: to_hex(&nonce),
                        start,
                        challenges: challenges.iter().map(|c| challenge_name(*c)).collect(),
                    });
                }
            }
        }
    }
    Chance {
        attempts,
        passed,
        rate: if attempts > 0 {
            passed as f64 / attempts as f64
        } else {
            0.0
        },
        upper_95: clopper_pearson_upper(passed, attempts, 0.95),
        passive,
        nonces,
        starts_every,
        passing,
    }
}
