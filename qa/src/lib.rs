//! FacePay quality assurance: what the CLI's `eval`, `bench`, `replay` and the tests use, and the mobile library
//! never links.
//!
//! - [`eval`]: pair lists and verification metrics (accuracy, ROC, TAR at FAR, EER, k-fold, all pairs);
//! - [`clip`]: clip folders and recordings of liveness sessions (the frame source for QA replay);
//! - [`sheet`]: contact sheets of a session's frames with their outline and prompt;
//! - [`paths`]: where the committed models and the development data are, for tools and tests (the only place a
//!   build-machine path is compiled in).

pub mod clip;
pub mod error;
pub mod eval;
pub mod paths;
pub mod sheet;

pub use error::QaError;
