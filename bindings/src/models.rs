//! Where the models come from: a **model bundle** is `manifest.toml` plus the NNEF model files it names. The app
//! hands it over as a [`ModelAssets`] foreign trait (Android `AssetManager`, iOS `Bundle`), as bytes in memory
//! ([`model_bytes`]) or as a directory ([`model_directory`], desktops). Either way every model is sha256-checked
//! against the manifest before it is parsed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use facepay_core::vision::VisionError;
use facepay_core::vision::model::ModelSource;

use crate::platform::PlatformError;

/// Reads the files of a model bundle. Safe to call from any thread.
#[uniffi::export(with_foreign)]
pub trait ModelAssets: Send + Sync {
    /// The bytes of the bundle's file `name` (`manifest.toml` or a file the manifest names), or `null`/`nil` when
    /// the bundle has no such file.
    fn read(&self, name: String) -> Result<Option<Vec<u8>>, PlatformError>;
}

/// A model bundle in memory: file name → bytes (e.g. files the app downloaded with its own update mechanism).
#[uniffi::export]
pub fn model_bytes(files: HashMap<String, Vec<u8>>) -> Arc<dyn ModelAssets> {
    Arc::new(InMemory(files))
}

/// A model bundle in a directory (desktops, tests).
#[uniffi::export]
pub fn model_directory(path: String) -> Arc<dyn ModelAssets> {
    Arc::new(Directory(PathBuf::from(path)))
}

struct InMemory(HashMap<String, Vec<u8>>);

impl ModelAssets for InMemory {
    fn read(&self, name: String) -> Result<Option<Vec<u8>>, PlatformError> {
        Ok(self.0.get(&name).cloned())
    }
}

struct Directory(PathBuf);

impl ModelAssets for Directory {
    fn read(&self, name: String) -> Result<Option<Vec<u8>>, PlatformError> {
        ModelSource::read(self.0.as_path(), &name).map_err(|e| PlatformError::Failed {
            reason: e.to_string(),
        })
    }
}

/// The core's model source over an exported [`ModelAssets`].
pub(crate) struct AssetsBridge(pub(crate) Arc<dyn ModelAssets>);

impl ModelSource for AssetsBridge {
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, VisionError> {
        self.0
            .read(file.into())
            .map_err(|e| VisionError::ModelRead {
                path: Path::new(file).to_owned(),
                reason: e.to_string(),
            })
    }

    fn describe(&self, file: &str) -> PathBuf {
        PathBuf::from(file)
    }
}
