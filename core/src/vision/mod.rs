//! On-device vision: detect ▸ landmarks ▸ eyes ▸ align ▸ anti-spoof ▸ embed.
//!
//! Each stage is a type built once from model bytes, with a pure `run` and no I/O. Frames and images (`frame`,
//! `image`, `quality`) need only the `frames` feature; the model stages need `vision` (tract).

#[cfg(feature = "vision")]
pub mod align;
#[cfg(feature = "vision")]
pub mod antispoof;
#[cfg(feature = "vision")]
mod conv_fusion;
#[cfg(feature = "vision")]
mod depthwise;
#[cfg(feature = "vision")]
pub mod detect;
#[cfg(feature = "vision")]
pub mod embed;
pub mod error;
#[cfg(feature = "vision")]
pub mod eyes;
pub mod frame;
pub mod image;
#[cfg(feature = "vision")]
pub mod landmarks;
#[cfg(feature = "vision")]
mod layout;
#[cfg(feature = "vision")]
pub mod model;
#[cfg(feature = "vision")]
pub mod pipeline;
#[cfg(feature = "vision")]
mod pool;
#[cfg(feature = "vision")]
mod prelu;
pub mod quality;
#[cfg(feature = "vision")]
mod runner;
#[cfg(feature = "vision")]
mod stem;

pub use error::{FrameProblem, VisionError};
