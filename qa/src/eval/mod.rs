//! Face-verification evaluation: pair lists and the metrics reported over scored pairs.
//!
//! Pure code (no models, no I/O beyond reading a pairs file): [`pairs`] parses LFW-style pair lists,
//! [`metrics`] turns similarity scores into accuracy, thresholds, TAR at fixed FAR, EER and the k-fold protocol,
//! [`all_pairs`] scores every pair of a labelled embedding set in bounded memory (FAR on millions of pairs),
//! [`bounds`] gives rates their Clopper–Pearson upper bound and ROC curves their area.

pub mod all_pairs;
pub mod bounds;
pub mod error;
pub mod metrics;
pub mod pairs;

pub use error::EvalError;
