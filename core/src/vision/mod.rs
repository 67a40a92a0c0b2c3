//! On-device vision: detect ▸ landmarks ▸ eyes ▸ align ▸ anti-spoof ▸ embed.
//!
//! Each stage is a type built once from model bytes, with a pure `run` and no I/O.

pub mod align;
pub mod antispoof;
pub mod detect;
pub mod embed;
pub mod error;
pub mod eyes;
pub mod frame;
pub mod image;
pub mod landmarks;
pub mod model;
pub mod pipeline;
mod prelu;
pub mod quality;
mod runner;

pub use error::VisionError;
