//! Liveness: the head-outline session between the camera and the payment.
//!
//! Two layers:
//! - [`LivenessMachine`], a pure state machine fed one [`Observation`] (a few numbers measured on a frame) and a
//!   timestamp per frame, answering a [`Guidance`] (outline, prompt, progress) and finally a [`Verdict`];
//! - [`LivenessSession`], which owns a [`crate::vision::pipeline::Vision`], turns each camera
//!   [`Frame`](crate::vision::frame::Frame) into an observation (running the passive anti-spoof models only on a
//!   few selected frames), tracks the best frame for matching and returns it with the verdict.
//!
//! The challenges are the checkout protocol's [`Challenge`]s, derived from the server nonce by
//! [`challenges_for_nonce`]. Everything is tuned by one [`LivenessPolicy`]. Neither layer does I/O;
//! [`clip`] reads clip folders and recordings for QA replay, [`sheet`] draws contact sheets.

mod challenge;
mod error;
mod gates;
mod guidance;
mod machine;
mod observation;
mod passive;
mod policy;
mod session;
mod still;
mod verdict;

pub use challenge::{
    Challenge, CloserOutline, challenge_name, challenges_for_nonce, parse_challenges,
};
pub use error::LivenessError;
pub use guidance::{FailReason, Guidance, GuidanceState, HeadAction, Oval, TimeoutReason};
pub use machine::LivenessMachine;
pub use observation::{FaceObservation, FaceQuality, NormPoint, NormRect, Observation};
pub use passive::{MAX_PASSIVE_SAMPLES, PassiveAggregate, PassiveSamples};
pub use policy::{
    BlinkPolicy, CloserPolicy, LivenessPolicy, LookPolicy, OvalPolicy, PassivePolicy,
    PlacementPolicy, QualityPolicy, ResponsePolicy, TimingPolicy, TurnPolicy, VisionPolicy,
};
pub use session::{BestFrame, FACE_OVAL, LivenessSession, observation};
pub use still::{StillScore, still_passive_score};
pub use verdict::{ChallengeRecord, Outcome, PassiveMode, Verdict, to_hex};
