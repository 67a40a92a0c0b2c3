//! The outcome of a session: what was asked, what was done (with frame indices), the passive score, the decision.

use serde::{Deserialize, Serialize};

use super::Challenge;
use super::guidance::{FailReason, TimeoutReason};

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Outcome {
    /// A live person did every challenge and the passive check (when present) agreed.
    Passed,
    /// The evidence says this is not a live person.
    Failed,
    /// Time ran out before the evidence was complete.
    TimedOut,
}

impl Outcome {
    /// `"passed"`, `"failed"` or `"timed_out"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
        }
    }
}

/// One challenge of the session and when it was satisfied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    /// The challenge asked.
    pub challenge: Challenge,
    /// Seconds from the first frame to the moment its prompt was first shown; `None` if it never was.
    #[serde(default)]
    pub prompted_at_s: Option<f64>,
    /// Index of the frame where it was satisfied; `None` if it was not.
    pub satisfied_frame: Option<u64>,
    /// Seconds from the first frame to that frame.
    pub satisfied_at_s: Option<f64>,
}

/// How the passive anti-spoof check took part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassiveMode {
    /// MiniFASNet V2 + V1SE fused, averaged over the session's good frames.
    FusedMinifasnet,
    /// The models are not installed: the verdict rests on the active challenges only.
    ActiveOnly,
}

/// The outcome of a liveness session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub outcome: Outcome,
    /// Why it failed or timed out, in English; `None` when passed.
    pub reason: Option<String>,
    /// The typed failure reason when the outcome is `Failed`.
    pub fail_reason: Option<FailReason>,
    /// The typed time limit reached when the outcome is `TimedOut`.
    #[serde(default)]
    pub timeout_reason: Option<TimeoutReason>,
    /// The server nonce the challenges were derived from (lowercase hex, 64 digits).
    pub nonce: String,
    /// Every challenge asked, in order, with the frame where each was satisfied.
    pub challenges: Vec<ChallengeRecord>,
    /// Whether the passive check took part.
    pub passive_mode: PassiveMode,
    /// The fused passive score (mean over the sampled frames, 1 = real), when any frame was sampled.
    pub passive_score: Option<f32>,
    /// Number of frames the passive score was fused over.
    pub passive_samples: u32,
    /// Frames pushed up to and including the one that decided.
    pub frames: u64,
    /// Seconds from the first frame to the deciding frame.
    pub time_to_verdict_s: f64,
}

impl Verdict {
    /// True when the outcome is `Passed`.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
