//! Face-verification evaluation: pair lists and the metrics reported over scored pairs.
//!
//! Pure code (no models, no I/O beyond reading a pairs file): [`pairs`] parses LFW-style pair lists,
//! [`metrics`] turns similarity scores into accuracy, thresholds, TAR at fixed FAR, EER and the k-fold protocol,
//! [`bounds`] gives rates their Clopper–Pearson upper bound and ROC curves their area.

pub mod bounds;
pub mod error;
pub mod metrics;
pub mod pairs;

pub use error::EvalError;
