//! Every clip frame analysed once: the observations a session would see (with `redetect_every = 1` the analysis
//! of a frame does not depend on the frames before it), and the fused passive score of every frame with a face.
//! The state machine then runs over these for any nonce and start frame, in microseconds per frame.

use std::path::Path;

use facepay_core::liveness::{LivenessMachine, LivenessPolicy, Observation, Verdict, observation};
use facepay_core::vision::pipeline::{Tracking, Vision};
use facepay_qa::clip::Clip;

/// One clip, analysed.
#[derive(Debug, Clone)]
pub struct ClipObservations {
    /// Folder name (e.g. `live-d3`).
    pub name: String,
    /// `live` or the attack type.
    pub label: String,
    /// Frame timestamps, seconds.
    pub timestamps: Vec<f64>,
    /// What the machine sees of each frame (no passive score).
    pub frames: Vec<Observation>,
    /// The fused passive score of each frame with a face (when the models are loaded).
    pub passive: Vec<Option<f32>>,
}

/// The result of one machine run over cached frames.
#[derive(Debug, Clone)]
pub struct Run {
    /// The verdict, when the machine reached one before the clip ended.
    pub verdict: Option<Verdict>,
    /// Frames pushed.
    pub frames: usize,
}

impl ClipObservations {
    /// Analyses every frame of the clip in `dir` (the passive models run on every frame with a face when `vision`
    /// has them and `passive` is set). A frame that cannot be read or analysed is a frame without a face.
    /// Tracking follows `policy.vision` (with the default `redetect_every = 1` every frame is detected afresh).
    pub fn analyse(
        vision: &mut Vision,
        policy: &LivenessPolicy,
        dir: &Path,
        passive: bool,
    ) -> anyhow::Result<Self> {
        let clip = Clip::open(dir)?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let label = clip
            .info()
            .label
            .clone()
            .unwrap_or_else(|| "unlabelled".into());
        vision.set_tracking(Tracking {
            redetect_every: policy.vision.redetect_every,
            ..Tracking::default()
        });
        let (mut frames, mut scores, mut timestamps) = (vec![], vec![], vec![]);
        for i in 0..clip.len() {
            timestamps.push(clip.timestamp(i));
            let Ok(image) = clip.read_frame(i) else {
                frames.push(Observation::empty(0, 0));
                scores.push(None);
                continue;
            };
            let Ok(analysis) = vision.analyze(&image) else {
                frames.push(Observation::empty(image.width, image.height));
                scores.push(None);
                continue;
            };
            let score = match (&analysis.primary, passive && vision.has_antispoof()) {
                (Some(p), true) => vision.antispoof(&image, &p.face).ok().flatten(),
                _ => None,
            };
            frames.push(observation(&analysis, image.width, image.height, false));
            scores.push(score);
        }
        Ok(Self {
            name,
            label,
            timestamps,
            frames,
            passive: scores,
        })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Runs `machine` over frames `from..`, giving it the cached passive score of every frame it asks to sample.
    pub fn run(&self, mut machine: LivenessMachine, from: usize) -> Run {
        let mut pushed = 0;
        for i in from..self.len() {
            pushed += 1;
            let obs = self.frame_for(&machine, i);
            machine.push(&obs, self.timestamps[i]);
            if machine.verdict().is_some() {
                break;
            }
        }
        Run {
            verdict: machine.verdict().cloned(),
            frames: pushed,
        }
    }

    /// Frame `i` as `machine` would get it from a session: with its passive score if the machine samples it.
    pub fn frame_for(&self, machine: &LivenessMachine, i: usize) -> Observation {
        let mut obs = self.frames[i].clone();
        if machine.wants_passive_sample(&obs)
            && let Some(face) = obs.face.as_mut()
        {
            face.passive_score = self.passive[i];
        }
        obs
    }
}
