//! Where tools and tests find the committed models and the development data. The defaults are paths of the build
//! machine (`CARGO_MANIFEST_DIR` at compile time), which is why they live here and never in the library.

use std::path::{Path, PathBuf};

use facepay_core::vision::VisionError;
use facepay_core::vision::pipeline::Vision;

/// Directory of the committed models: env `FACEPAY_MODELS`, else `<workspace>/models`.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("FACEPAY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("models"))
}

/// Directory of the external MiniFASNet models: env `FACEPAY_ANTISPOOF_MODELS`, else `<shared>/models`.
pub fn default_antispoof_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEPAY_ANTISPOOF_MODELS") {
        return PathBuf::from(dir);
    }
    default_shared_dir().join("models")
}

/// The development and evaluation data folder (clips, LFW, stills and the MiniFASNet models; never shipped): env
/// `FACEPAY_SHARED`, else `<workspace>/../shared`.
pub fn default_shared_dir() -> PathBuf {
    std::env::var_os("FACEPAY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("..").join("shared"))
}

/// Loads the committed models from [`default_models_dir`] and the anti-spoof models, when present, from
/// [`default_antispoof_dir`].
pub fn load_default_vision() -> Result<Vision, VisionError> {
    Vision::load(&default_models_dir(), Some(&default_antispoof_dir()))
}

/// The workspace root as seen at compile time.
fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
