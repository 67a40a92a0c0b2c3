//! Frames of a recorded clip folder (`NNNNN.jpg` + `clip.json` with its `fps`), decoded ahead on a helper thread
//! so decoding overlaps the vision pipeline; and where the clips live by default.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, bail};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::image::RgbImage;
use facepay_qa::paths::default_shared_dir;

/// Frame rate assumed when a clip has no `clip.json`.
const DEFAULT_FPS: f64 = 15.0;
/// Decoded frames buffered ahead of the consumer.
const PREFETCH: usize = 6;

/// A clip folder: its frame files in order and its frame rate.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The folder.
    pub dir: PathBuf,
    /// Frame files, sorted by name.
    pub files: Vec<PathBuf>,
    /// Frames per second (timestamps are `index / fps`).
    pub fps: f64,
}

/// One decoded frame.
pub struct ClipFrame {
    /// 0-based index in the clip.
    pub index: usize,
    /// Seconds from the clip's start.
    pub t: f64,
    /// The upright RGB image.
    pub image: RgbImage,
}

impl Clip {
    /// Opens a clip folder; a missing folder or one without `.jpg`/`.png` frames is an error naming it.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            bail!("clip folder {} does not exist", dir.display());
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading clip folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("png"))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("clip folder {} holds no .jpg or .png frames", dir.display());
        }
        let fps = std::fs::read_to_string(dir.join("clip.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("fps").and_then(|f| f.as_f64()))
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(DEFAULT_FPS);
        Ok(Self {
            dir: dir.to_owned(),
            files,
            fps,
        })
    }

    /// The frames from index `start` on, decoded ahead on a helper thread (stops when the receiver is dropped).
    pub fn frames(&self, start: usize) -> mpsc::Receiver<anyhow::Result<ClipFrame>> {
        let (tx, rx) = mpsc::sync_channel(PREFETCH);
        let files: Vec<(usize, PathBuf)> =
            self.files.iter().cloned().enumerate().skip(start).collect();
        let fps = self.fps;
        std::thread::spawn(move || {
            for (index, path) in files {
                let frame = decode_file(&path)
                    .with_context(|| format!("decoding {}", path.display()))
                    .map(|image| ClipFrame {
                        index,
                        t: index as f64 / fps,
                        image,
                    });
                if tx.send(frame).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

/// The clips folder: `--clips DIR`, else `$FACEPAY_SHARED/data/clips`, else `<workspace>/../shared/data/clips`.
pub fn clips_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    default_shared_dir().join("data").join("clips")
}
