//! The scripted compliant shopper — **simulated**: a session composed, for any nonce, from real frames of a live
//! clip, following the prompts the way a person does.
//!
//! `docs/clip-actions.toml` annotates, in the shared clips, the frame ranges of neutral poses (still, frontal,
//! eyes open) and of each action (a blink, a turn to either side, a nod up or down), each action range starting
//! and ending near neutral. The shopper plays neutral frames (back and forth within a neutral range) until a
//! prompt appears, waits a human reaction time (log-normal, median 0.45 s, 0.25–1.2 s), plays the asked action's
//! frames, and goes back to neutral. The neutral frames shown before an action are those just before it in the clip,
//! so the footage runs on without a jump. What the clips lack is composed from what they have, and says so:
//! - a turn to a side the clip has no turn to is its other turn mirrored left–right (the whole frame is flipped);
//! - the shopper turns or nods about 25° (20° of pitch) and comes back: the clips' dwell at full profile is skipped
//!   (`skip` in the annotations);
//! - **moving closer is a digital zoom of real neutral frames** (no clip approaches the camera): the zoom grows to
//!   the nonce's larger outline and back over ~1.3 s, its centre placed so the face lands in that outline.
//!
//! Pitch cannot be composed: a nonce that asks for a nod only runs on a clip that holds one.

use anyhow::Context;
use facepay_core::liveness::{
    Challenge, CloserOutline, FaceObservation, Guidance, GuidanceState, NormPoint, Observation,
};
use facepay_core::vision::image::RgbImage;
use serde::Deserialize;

/// The committed annotation file.
pub const ACTIONS_TOML: &str = include_str!("../../docs/clip-actions.toml");

/// Inclusive frame ranges.
type Ranges = Vec<[usize; 2]>;

/// The annotated actions of one clip.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipActions {
    /// Clip folder name (under the shared `data/clips` or `data/liveness`).
    pub name: String,
    /// Still, frontal, eyes open.
    #[serde(default)]
    pub neutral: Ranges,
    /// One blink each (open ▸ closed ▸ open).
    #[serde(default)]
    pub blink: Ranges,
    /// A turn to the person's left and back.
    #[serde(default)]
    pub turn_left: Ranges,
    /// A turn to the person's right and back.
    #[serde(default)]
    pub turn_right: Ranges,
    /// A nod up and back.
    #[serde(default)]
    pub look_up: Ranges,
    /// A nod down and back.
    #[serde(default)]
    pub look_down: Ranges,
    /// Frames of the turns and nods never shown: the stretch beyond 25° of yaw (20° of pitch) from the pose before
    /// the action, where the clip's person dwells at full profile; a shopper answering a prompt turns about that
    /// far and comes back, so the action is played up to the first frame that far out and on from the last one.
    #[serde(default)]
    pub skip: Ranges,
    /// Per-frame labels where the clip is not one label throughout: `[first, last, label]`.
    #[serde(default)]
    pub labels: Vec<(usize, usize, String)>,
}

/// The annotation file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    /// One entry per annotated clip.
    #[serde(default)]
    pub clip: Vec<ClipActions>,
}

impl Actions {
    /// The committed annotations.
    pub fn committed() -> anyhow::Result<Self> {
        Self::parse(ACTIONS_TOML).context("docs/clip-actions.toml")
    }

    /// Parses an annotation file.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The annotations of clip `name`.
    pub fn get(&self, name: &str) -> Option<&ClipActions> {
        self.clip.iter().find(|c| c.name == name)
    }
}

/// How a challenge is shown from a clip: its frames, mirrored or not; or a zoom.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Frames { range: [usize; 2], mirror: bool },
    Zoom(CloserOutline),
}

impl ClipActions {
    /// The label of frame `i`: from `labels` where given, else `default`.
    pub fn label_of<'a>(&'a self, i: usize, default: &'a str) -> &'a str {
        self.labels
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&i))
            .map_or(default, |(_, _, l)| l.as_str())
    }

    /// Whether every challenge of `list` can be shown from this clip (and it has a neutral range).
    pub fn can_show(&self, list: &[Challenge]) -> bool {
        !self.neutral.is_empty() && list.iter().all(|c| !self.sources(*c).is_empty())
    }

    /// The ways to show `c`.
    fn sources(&self, c: Challenge) -> Vec<Source> {
        let frames = |r: &Ranges, mirror: bool| {
            r.iter()
                .map(|&range| Source::Frames { range, mirror })
                .collect::<Vec<_>>()
        };
        match c {
            Challenge::Blink => frames(&self.blink, false),
            // A mirrored turn only where the clip has no turn to that side (mirroring makes a slightly turned
            // resting pose the other way, which the session rightly sees as a drift).
            Challenge::TurnLeft if self.turn_left.is_empty() => frames(&self.turn_right, true),
            Challenge::TurnLeft => frames(&self.turn_left, false),
            Challenge::TurnRight if self.turn_right.is_empty() => frames(&self.turn_left, true),
            Challenge::TurnRight => frames(&self.turn_right, false),
            Challenge::LookUp => frames(&self.look_up, false),
            Challenge::LookDown => frames(&self.look_down, false),
            Challenge::MoveCloser(o) => vec![Source::Zoom(o)],
        }
    }
}

/// A digital zoom: the output shows the source region from `origin` (normalised top-left) of size `1/factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zoom {
    /// Magnification (> 1).
    pub factor: f32,
    /// Top-left of the shown region, normalised source coordinates.
    pub origin: (f32, f32),
}

impl Zoom {
    /// Where source point `(x, y)` lands in the output (normalised).
    pub fn map(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x - self.origin.0) * self.factor,
            (y - self.origin.1) * self.factor,
        )
    }
}

/// One frame the shopper shows: a source frame, mirrored and/or zoomed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    /// Source frame index in the clip.
    pub frame: usize,
    /// Flipped left–right.
    pub mirror: bool,
    /// Digital zoom.
    pub zoom: Option<Zoom>,
}

/// What the shopper is doing.
#[derive(Debug, Clone)]
enum Mode {
    /// Looking at the screen, neutral.
    Neutral,
    /// A prompt appeared; the action starts at `start_t`.
    Reacting { start_t: f64, source: Source },
    /// Playing the action: the shots left, in order.
    Acting { shots: Vec<Shot>, next: usize },
}

/// Face geometry of a source frame: centre and height, normalised (for placing a zoom).
pub type FaceBox = Option<((f32, f32), f32)>;

/// Neutral frames shown before an action: at most this many, the last ones before the action's first frame.
const NEUTRAL_LEAD_FRAMES: usize = 8;

/// The scripted shopper over one clip's annotations.
#[derive(Debug, Clone)]
pub struct ScriptedShopper {
    actions: ClipActions,
    fps: f64,
    rng: u64,
    mode: Mode,
    prompt_seen: Option<GuidanceState>,
    /// The action chosen for each challenge of the session's list, in order, and the next one to answer.
    plan: Vec<(Challenge, Source)>,
    planned: usize,
    /// A prompt that came while an action was still playing: answered once it ends.
    queued: Option<(f64, Source)>,
    /// The neutral frames shown (inclusive range), mirrored or not, and where the back-and-forth is.
    neutral: [usize; 2],
    neutral_mirror: bool,
    neutral_pos: usize,
    neutral_dir: i64,
    /// Normal outline centre and semi-axis y of the session (where the zoom places the face).
    outline: ((f32, f32), f32),
}

impl ScriptedShopper {
    /// A shopper playing `actions` of a clip at `fps` for a session asking `challenges` (empty: unknown, each
    /// prompt answered with a randomly chosen action), its reaction times drawn from `seed`; `outline` is the
    /// session's normal outline `((cx, cy), ry)`.
    ///
    /// Like a person who stays in one pose until asked to move, the neutral frames shown before each action
    /// are the last ones of the annotated neutral range just before that action (mirrored with it), so the
    /// footage runs on without a jump when the action starts.
    pub fn new(
        actions: &ClipActions,
        fps: f64,
        seed: u64,
        outline: ((f32, f32), f32),
        challenges: &[Challenge],
    ) -> Self {
        let mut s = Self {
            actions: actions.clone(),
            fps,
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            mode: Mode::Neutral,
            prompt_seen: None,
            plan: vec![],
            planned: 0,
            queued: None,
            neutral: [0, 0],
            neutral_mirror: false,
            neutral_pos: 0,
            neutral_dir: 1,
            outline,
        };
        let start = (s.next_u64() as usize) % actions.neutral.len().max(1);
        s.set_neutral(actions.neutral.get(start).copied().unwrap_or([0, 0]), false);
        for &c in challenges {
            let options = s.actions.sources(c);
            if options.is_empty() {
                break;
            }
            let pick = (s.next_u64() as usize) % options.len();
            s.plan.push((c, options[pick].clone()));
        }
        s.lead_into_planned();
        s
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A human reaction time: log-normal, median 0.45 s, σ = 0.3 (in log space), kept within 0.25–1.2 s.
    fn reaction_s(&mut self) -> f64 {
        // Box–Muller.
        let (u1, u2) = (self.uniform().max(1e-12), self.uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (0.45 * (0.3 * z).exp()).clamp(0.25, 1.2)
    }

    fn set_neutral(&mut self, range: [usize; 2], mirror: bool) {
        self.neutral = range;
        self.neutral_mirror = mirror;
        self.neutral_pos = range[0];
        self.neutral_dir = 1;
    }

    /// Shows, from now on, the neutral frames that lead into the next planned action.
    fn lead_into_planned(&mut self) {
        if let Some((_, source)) = self.plan.get(self.planned).cloned() {
            self.lead_into(&source);
        }
    }

    /// Shows, from now on, the neutral frames that lead into `source` (when it plays frames).
    fn lead_into(&mut self, source: &Source) {
        let Source::Frames {
            range: [a, _],
            mirror,
        } = *source
        else {
            return;
        };
        let before = self
            .actions
            .neutral
            .iter()
            .filter(|r| r[1] < a)
            .max_by_key(|r| r[1]);
        let nearest = || {
            self.actions
                .neutral
                .iter()
                .min_by_key(|r| r[0].abs_diff(a).min(r[1].abs_diff(a)))
        };
        if let Some(&[x, y]) = before.or_else(nearest) {
            let lead = [y.saturating_sub(NEUTRAL_LEAD_FRAMES - 1).max(x), y];
            if lead != self.neutral || mirror != self.neutral_mirror {
                self.set_neutral(lead, mirror);
            }
        }
    }

    /// The next neutral frame: back and forth within the current neutral range.
    fn neutral_shot(&mut self) -> Shot {
        let [a, b] = self.neutral;
        let frame = self.neutral_pos.clamp(a, b);
        if a < b {
            let next = frame as i64 + self.neutral_dir;
            if next < a as i64 || next > b as i64 {
                self.neutral_dir = -self.neutral_dir;
            }
            self.neutral_pos = (frame as i64 + self.neutral_dir).clamp(a as i64, b as i64) as usize;
        }
        Shot {
            frame,
            mirror: self.neutral_mirror,
            zoom: None,
        }
    }

    /// How to answer the prompt of `guidance`: the planned action when it is the one asked next, else one chosen
    /// at random among the clip's.
    fn answer(&mut self, guidance: &Guidance) -> Option<Source> {
        let asked = challenge_of(guidance)?;
        if let Some((c, source)) = self.plan.get(self.planned).cloned()
            && std::mem::discriminant(&c) == std::mem::discriminant(&asked)
        {
            self.planned += 1;
            return Some(source);
        }
        let options = self.actions.sources(asked);
        (!options.is_empty()).then(|| {
            let pick = (self.next_u64() as usize) % options.len();
            options[pick].clone()
        })
    }

    /// The frame to show at time `t`, given the guidance answered for the previous frame (`None` for the first)
    /// and the face geometry of source frames (for a zoom).
    pub fn next(
        &mut self,
        last: Option<&Guidance>,
        t: f64,
        face: &mut dyn FnMut(usize) -> FaceBox,
    ) -> Shot {
        if let Some(g) = last
            && g.state.is_challenge()
            && self.prompt_seen != Some(g.state)
        {
            // The reaction runs from the moment the prompt is seen, even while the last action is ending.
            self.prompt_seen = Some(g.state);
            if let Some(source) = self.answer(g) {
                let start_t = t + self.reaction_s();
                match self.mode {
                    Mode::Acting { .. } => self.queued = Some((start_t, source)),
                    _ => self.mode = Mode::Reacting { start_t, source },
                }
            }
        }
        if last.is_some_and(|g| !g.state.is_challenge()) {
            self.prompt_seen = None;
        }
        match std::mem::replace(&mut self.mode, Mode::Neutral) {
            Mode::Neutral => self.neutral_shot(),
            Mode::Reacting { start_t, source } if t < start_t => {
                self.mode = Mode::Reacting { start_t, source };
                self.neutral_shot()
            }
            Mode::Reacting { source, .. } => {
                let shots = self.action_shots(&source, last, face);
                self.mode = Mode::Acting { shots, next: 0 };
                self.next(None, t, face)
            }
            Mode::Acting { shots, next } => match shots.get(next).copied() {
                Some(shot) => {
                    self.mode = Mode::Acting {
                        shots,
                        next: next + 1,
                    };
                    shot
                }
                None => {
                    if let Some((start_t, source)) = self.queued.take() {
                        self.lead_into(&source);
                        self.mode = Mode::Reacting { start_t, source };
                        return self.next(None, t, face);
                    }
                    self.lead_into_planned();
                    self.neutral_shot()
                }
            },
        }
    }

    /// The shots of one action.
    fn action_shots(
        &mut self,
        source: &Source,
        last: Option<&Guidance>,
        face: &mut dyn FnMut(usize) -> FaceBox,
    ) -> Vec<Shot> {
        match *source {
            Source::Frames {
                range: [a, b],
                mirror,
            } => (a..=b)
                .filter(|i| !self.actions.skip.iter().any(|r| (r[0]..=r[1]).contains(i)))
                .map(|frame| Shot {
                    frame,
                    mirror,
                    zoom: None,
                })
                .collect(),
            Source::Zoom(outline) => {
                let target = last.map_or(
                    (
                        self.outline.0.0 + f32::from(outline.dx_pct) / 100.0,
                        self.outline.0.1 + f32::from(outline.dy_pct) / 100.0,
                    ),
                    |g| (g.oval.cx, g.oval.cy),
                );
                // The larger outline as drawn (a person sees its size; a hand-written list has no outline).
                let top = last
                    .map(|g| g.oval.ry / self.outline.1.max(f32::EPSILON))
                    .filter(|k| *k > 1.0)
                    .unwrap_or(f32::from(outline.scale_pct) / 100.0);
                // ~0.5 s in, ~0.3 s held, ~0.5 s back (in frames at the clip's rate).
                let ramp = ((0.5 * self.fps).round() as usize).max(2);
                let hold = ((0.3 * self.fps).round() as usize).max(1);
                let mut factors: Vec<f32> = (1..=ramp)
                    .map(|i| 1.0 + (top - 1.0) * i as f32 / ramp as f32)
                    .collect();
                factors.extend(std::iter::repeat_n(top, hold));
                factors.extend(
                    (0..ramp)
                        .rev()
                        .map(|i| 1.0 + (top - 1.0) * i as f32 / ramp as f32),
                );
                factors
                    .into_iter()
                    .map(|factor| {
                        let shot = self.neutral_shot();
                        let zoom = (factor > 1.0).then(|| {
                            let (fc, _) = face(shot.frame).unwrap_or((self.outline.0, 0.0));
                            // The face centre moves from where it is to the larger outline's centre as the zoom grows.
                            let k = (factor - 1.0) / (top - 1.0).max(f32::EPSILON);
                            let goal = (fc.0 + (target.0 - fc.0) * k, fc.1 + (target.1 - fc.1) * k);
                            zoom_placing(fc, goal, factor)
                        });
                        Shot { zoom, ..shot }
                    })
                    .collect()
            }
        }
    }
}

/// The challenge a guidance prompts (the move-closer outline read back from the larger oval shown).
fn challenge_of(g: &Guidance) -> Option<Challenge> {
    Some(match g.state {
        GuidanceState::Blink => Challenge::Blink,
        GuidanceState::TurnLeft => Challenge::TurnLeft,
        GuidanceState::TurnRight => Challenge::TurnRight,
        GuidanceState::LookUp => Challenge::LookUp,
        GuidanceState::LookDown => Challenge::LookDown,
        GuidanceState::FillOutline => Challenge::MoveCloser(CloserOutline::default()),
        _ => return None,
    })
}

/// The zoom by `factor` that shows source point `from` at output point `to`, its region kept inside the frame.
pub fn zoom_placing(from: (f32, f32), to: (f32, f32), factor: f32) -> Zoom {
    let size = 1.0 / factor;
    let clamp = |v: f32| v.clamp(0.0, 1.0 - size);
    Zoom {
        factor,
        origin: (clamp(from.0 - to.0 * size), clamp(from.1 - to.1 * size)),
    }
}

/// The observation of a shot, from the source frame's observation: a zoom maps the face geometry and its pixel
/// size, then mirroring flips x, yaw, roll and the eyes (pose, eyes, light and sharpness are kept from the source
/// frame — an approximation stated in the report).
pub fn shot_observation(src: &Observation, shot: &Shot) -> Observation {
    let mut obs = src.clone();
    if let Some(face) = obs.face.as_mut() {
        if let Some(z) = shot.zoom {
            zoom_face(face, &z);
        }
        if shot.mirror {
            mirror_face(face);
        }
    }
    obs
}

fn mirror_face(f: &mut FaceObservation) {
    f.bbox.x = 1.0 - f.bbox.x - f.bbox.w;
    for p in &mut f.contour {
        p.x = 1.0 - p.x;
    }
    f.yaw_deg = -f.yaw_deg;
    f.roll_deg = -f.roll_deg;
    f.eye_openness.swap(0, 1);
}

fn zoom_face(f: &mut FaceObservation, z: &Zoom) {
    let (x, y) = z.map(f.bbox.x, f.bbox.y);
    f.bbox.x = x;
    f.bbox.y = y;
    f.bbox.w *= z.factor;
    f.bbox.h *= z.factor;
    for p in &mut f.contour {
        let (x, y) = z.map(p.x, p.y);
        *p = NormPoint { x, y };
    }
    f.quality.face_size_px *= z.factor;
}

/// The pixels of a shot: the source image zoomed, then mirrored (bilinear; the region stays inside the frame).
pub fn shot_image(src: &RgbImage, shot: &Shot) -> RgbImage {
    let (w, h) = (src.width as usize, src.height as usize);
    let mut out = RgbImage {
        width: src.width,
        height: src.height,
        data: vec![0; w * h * 3],
    };
    let z = shot.zoom.unwrap_or(Zoom {
        factor: 1.0,
        origin: (0.0, 0.0),
    });
    for oy in 0..h {
        let sy = (z.origin.1 + (oy as f32 + 0.5) / h as f32 / z.factor) * h as f32 - 0.5;
        let y0 = sy.floor().clamp(0.0, (h - 1) as f32) as usize;
        let y1 = (y0 + 1).min(h - 1);
        let fy = (sy - y0 as f32).clamp(0.0, 1.0);
        for ox in 0..w {
            let dx = if shot.mirror { w - 1 - ox } else { ox };
            let sx = (z.origin.0 + (ox as f32 + 0.5) / w as f32 / z.factor) * w as f32 - 0.5;
            let x0 = sx.floor().clamp(0.0, (w - 1) as f32) as usize;
            let x1 = (x0 + 1).min(w - 1);
            let fx = (sx - x0 as f32).clamp(0.0, 1.0);
            for c in 0..3 {
                let p = |x: usize, y: usize| f32::from(src.data[(y * w + x) * 3 + c]);
                let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
                let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
                out.data[(oy * w + dx) * 3 + c] = (top * (1.0 - fy) + bottom * fy).round() as u8;
            }
        }
    }
    out
}
