//! Clip folders and recordings: the frame source for QA replay.
//!
//! A clip folder holds `NNNNN.jpg` frames (numbered from 1, in order) and a `clip.json`:
//! `{"frames": n, "fps": f, "label": "live" | "replay" | …, "note": "…"}` as in `../shared/data/clips`.
//! A **recording** written by [`Recorder`] is the same folder with more keys in `clip.json`: `"timestamps"`
//! (seconds, one per frame; without them frame `i` is at `i / fps`), `"nonce"` (64 hex digits), `"challenges"`
//! (the list asked, e.g. `["blink", "turn_left"]`), `"guidance"` (the timeline the session emitted: one entry per
//! change of prompt) and `"verdict"`. Replaying a recording asks the same nonce and challenges unless told otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use facepay_core::liveness::{Challenge, Guidance, Verdict, to_hex};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::image::RgbImage;

use crate::QaError;

/// Name of the metadata file of a clip folder.
pub const CLIP_JSON: &str = "clip.json";

/// The `clip.json` of a clip folder or recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipInfo {
    /// Number of frames (informative; the frame files are what counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// Frames per second (timestamps are `index / fps` when `timestamps` is absent).
    pub fps: f64,
    /// Ground truth: `live`, or the attack type (`replay`, `print`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Per-frame timestamps in seconds (recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamps: Option<Vec<f64>>,
    /// The server nonce of the recorded session, 64 hex digits (recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The challenges the recorded session asked (recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenges: Option<Vec<Challenge>>,
    /// The guidance timeline the recorded session emitted (recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<Vec<TimelineEntry>>,
    /// The recorded session's verdict (recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// One change of prompt in a guidance timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Frame index where the prompt appeared.
    pub frame: u64,
    /// Its timestamp, seconds from the first frame.
    pub t: f64,
    /// The state's snake_case name (`hold_still`, `blink`, `failed`, …).
    pub state: String,
    /// The stable message key.
    pub key: String,
    /// Session progress at that frame, 0..1.
    pub progress: f32,
}

/// Collects the guidance timeline: one entry per change of state (bounded by the session's timeouts in practice,
/// and by [`Timeline::MAX_ENTRIES`] always).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    entries: Vec<TimelineEntry>,
    first_t: Option<f64>,
}

impl Timeline {
    /// Most entries kept (later changes are dropped).
    pub const MAX_ENTRIES: usize = 10_000;

    /// Records `g`, emitted for a frame at `timestamp_s`, if its state differs from the previous entry.
    pub fn push(&mut self, g: &Guidance, timestamp_s: f64) {
        let first = *self.first_t.get_or_insert(timestamp_s);
        let name = g.state.name();
        if self.entries.last().is_some_and(|e| e.state == name)
            || self.entries.len() >= Self::MAX_ENTRIES
        {
            return;
        }
        self.entries.push(TimelineEntry {
            frame: g.frame_index,
            t: timestamp_s - first,
            state: name.to_string(),
            key: g.message_key.to_string(),
            progress: g.progress,
        });
    }

    /// The entries so far.
    pub fn entries(&self) -> &[TimelineEntry] {
        &self.entries
    }
}

/// A clip folder opened for reading.
#[derive(Debug, Clone)]
pub struct Clip {
    dir: PathBuf,
    info: ClipInfo,
    frames: Vec<PathBuf>,
}

impl Clip {
    /// Opens `dir`: reads `clip.json` and lists its `NNNNN.jpg` frames in order.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, QaError> {
        let dir = dir.as_ref().to_path_buf();
        let err = |reason: String| QaError::Clip {
            path: dir.clone(),
            reason,
        };
        let json = std::fs::read_to_string(dir.join(CLIP_JSON))
            .map_err(|e| err(format!("{CLIP_JSON}: {e}")))?;
        let info: ClipInfo =
            serde_json::from_str(&json).map_err(|e| err(format!("{CLIP_JSON}: {e}")))?;
        if !(info.fps.is_finite() && info.fps > 0.0) {
            return Err(err(format!("fps must be positive, got {}", info.fps)));
        }
        let mut frames: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let stem = path.file_stem()?.to_str()?;
                let ext = path.extension()?.to_str()?.to_ascii_lowercase();
                let n = stem
                    .parse::<u64>()
                    .ok()
                    .filter(|_| ext == "jpg" || ext == "jpeg")?;
                Some((n, path))
            })
            .collect();
        frames.sort();
        if frames.is_empty() {
            return Err(err("no NNNNN.jpg frames".into()));
        }
        if let Some(ts) = &info.timestamps
            && ts.len() != frames.len()
        {
            return Err(err(format!(
                "{} timestamps for {} frames",
                ts.len(),
                frames.len()
            )));
        }
        Ok(Self {
            dir,
            info,
            frames: frames.into_iter().map(|(_, p)| p).collect(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its `clip.json`.
    pub fn info(&self) -> &ClipInfo {
        &self.info
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the clip has no frames (never true for an opened clip).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Timestamp of frame `i` in seconds: the recorded one, else `i / fps`.
    pub fn timestamp(&self, i: usize) -> f64 {
        match &self.info.timestamps {
            Some(ts) if i < ts.len() => ts[i],
            _ => i as f64 / self.info.fps,
        }
    }

    /// Path of frame `i`.
    pub fn frame_path(&self, i: usize) -> Option<&Path> {
        self.frames.get(i).map(PathBuf::as_path)
    }

    /// Decodes frame `i`.
    pub fn read_frame(&self, i: usize) -> Result<RgbImage, QaError> {
        let path = self.frame_path(i).ok_or_else(|| QaError::Clip {
            path: self.dir.clone(),
            reason: format!("no frame {i}"),
        })?;
        Ok(decode_file(path)?)
    }
}

/// Writes a recording of a live session, when the app is asked to (QA, device farms): the frames as JPEG plus a
/// `clip.json` with timestamps, nonce, challenges, guidance timeline and verdict. Memory: only the timestamps and
/// the timeline are kept; frames go straight to disk.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    info: ClipInfo,
    timestamps: Vec<f64>,
    timeline: Timeline,
    quality: u8,
}

impl Recorder {
    /// Starts a recording into `dir` (created if missing; must not already hold a `clip.json`).
    pub fn create(
        dir: impl AsRef<Path>,
        fps: f64,
        nonce: &[u8; 32],
        challenges: &[Challenge],
    ) -> Result<Self, QaError> {
        let dir = dir.as_ref().to_path_buf();
        let err = |reason: String| QaError::Clip {
            path: dir.clone(),
            reason,
        };
        if !(fps.is_finite() && fps > 0.0) {
            return Err(err(format!("fps must be positive, got {fps}")));
        }
        std::fs::create_dir_all(&dir).map_err(|e| err(e.to_string()))?;
        if dir.join(CLIP_JSON).exists() {
            return Err(err("already holds a recording".into()));
        }
        let info = ClipInfo {
            frames: None,
            fps,
            label: None,
            note: Some("recorded by the FacePay liveness session".into()),
            timestamps: None,
            nonce: Some(to_hex(nonce)),
            challenges: Some(challenges.to_vec()),
            guidance: None,
            verdict: None,
        };
        Ok(Self {
            dir,
            info,
            timestamps: vec![],
            timeline: Timeline::default(),
            quality: 90,
        })
    }

    /// Appends one frame (as shown to the session) with its timestamp and the guidance the session answered.
    pub fn record(
        &mut self,
        image: &RgbImage,
        timestamp_s: f64,
        guidance: &Guidance,
    ) -> Result<(), QaError> {
        let path = self.next_path();
        let err = |reason: String| QaError::Clip {
            path: path.clone(),
            reason,
        };
        let file = std::fs::File::create(&path).map_err(|e| err(e.to_string()))?;
        let mut out = std::io::BufWriter::new(file);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, self.quality)
            .encode(
                &image.data,
                image.width,
                image.height,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| err(e.to_string()))?;
        out.flush().map_err(|e| err(e.to_string()))?;
        self.push(timestamp_s, guidance);
        Ok(())
    }

    /// Appends a frame that already is a JPEG (a clip frame, a webcam's MJPEG frame) byte for byte, so a replay
    /// decodes exactly the pixels the session saw. Bytes that do not start like a JPEG are refused.
    pub fn record_jpeg(
        &mut self,
        jpeg: &[u8],
        timestamp_s: f64,
        guidance: &Guidance,
    ) -> Result<(), QaError> {
        let path = self.next_path();
        if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(QaError::Clip {
                path,
                reason: "not a JPEG (no start-of-image marker)".into(),
            });
        }
        std::fs::write(&path, jpeg).map_err(|e| QaError::Clip {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        self.push(timestamp_s, guidance);
        Ok(())
    }

    /// Path of the next frame file.
    fn next_path(&self) -> PathBuf {
        self.dir
            .join(format!("{:05}.jpg", self.timestamps.len() + 1))
    }

    /// Counts a written frame.
    fn push(&mut self, timestamp_s: f64, guidance: &Guidance) {
        self.timestamps.push(timestamp_s);
        self.timeline.push(guidance, timestamp_s);
    }

    /// Writes `clip.json` with the verdict (if any) and ends the recording.
    pub fn finish(mut self, verdict: Option<&Verdict>) -> Result<PathBuf, QaError> {
        self.info.frames = Some(self.timestamps.len() as u64);
        self.info.timestamps = Some(self.timestamps);
        self.info.guidance = Some(self.timeline.entries);
        self.info.verdict = verdict.cloned();
        let path = self.dir.join(CLIP_JSON);
        let json = serde_json::to_string_pretty(&self.info).map_err(|e| QaError::Clip {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(|e| QaError::Clip {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(self.dir)
    }
}

/// Parses a 64-hex-digit nonce.
pub fn parse_nonce(hex: &str) -> Result<[u8; 32], QaError> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(QaError::Nonce(format!(
            "expected 64 hex digits, got {} characters",
            hex.len()
        )));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| QaError::Nonce(format!("not hex: {:?}", &hex[2 * i..2 * i + 2])))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use facepay_core::liveness::{GuidanceState, Oval};

    fn guidance(frame_index: u64, state: GuidanceState) -> Guidance {
        Guidance {
            frame_index,
            state,
            oval: Oval {
                cx: 0.5,
                cy: 0.5,
                rx: 0.3,
                ry: 0.4,
            },
            progress: 0.5,
            message_key: state.message_key(),
            message: state.default_text(),
        }
    }

    #[test]
    fn recorder_writes_jpeg_bytes_verbatim_and_a_readable_clip_json() {
        let dir = std::env::temp_dir().join(format!("facepay-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let image = RgbImage::new(32, 32, vec![90; 32 * 32 * 3]).unwrap();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode(&image.data, 32, 32, image::ExtendedColorType::Rgb8)
            .unwrap();
        let nonce = [7u8; 32];
        let mut rec = Recorder::create(&dir, 15.0, &nonce, &[Challenge::Blink]).unwrap();
        rec.record_jpeg(&jpeg, 0.5, &guidance(0, GuidanceState::NoFace))
            .unwrap();
        rec.record(&image, 0.6, &guidance(1, GuidanceState::Blink))
            .unwrap();
        let refused = rec.record_jpeg(b"GIF89a", 0.7, &guidance(2, GuidanceState::Blink));
        assert!(matches!(refused, Err(QaError::Clip { .. })));
        rec.finish(None).unwrap();
        assert_eq!(std::fs::read(dir.join("00001.jpg")).unwrap(), jpeg);
        let clip = Clip::open(&dir).unwrap();
        assert_eq!(clip.len(), 2);
        assert_eq!(clip.timestamp(1), 0.6);
        let info = clip.info();
        assert_eq!(info.nonce.as_deref(), Some(to_hex(&nonce).as_str()));
        assert_eq!(info.challenges, Some(vec![Challenge::Blink]));
        let states: Vec<&str> = info
            .guidance
            .iter()
            .flatten()
            .map(|e| e.state.as_str())
            .collect();
        assert_eq!(states, ["no_face", "blink"]);
        assert!(clip.read_frame(1).is_ok());
        assert!(matches!(
            Recorder::create(&dir, 15.0, &nonce, &[]),
            Err(QaError::Clip { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
