//! The scripted shopper on real pixels (**simulated**), for `facepay demo`: each shot's source frame is decoded,
//! zoomed and mirrored as [`crate::scripted`] says, and pushed into an enrolment capture or a payment session
//! through the real vision pipeline; the next shot reacts to the guidance the session answered.

use facepay_core::enrolment::EnrolmentCapture;
use facepay_core::flow::{
    EnrolmentStep, EnrolmentSummary, FacePayError, PaymentSession, PaymentStep, SessionState,
    VisionFailure,
};
use facepay_core::liveness::{
    Challenge, Guidance, LivenessPolicy, Oval, TimeoutReason, observation,
};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::image::RgbImage;
use facepay_core::vision::pipeline::Vision;

use crate::clip_frames::Clip;
use crate::pay::{GuidancePrinter, Recording};
use crate::scripted::{ClipActions, FaceBox, ScriptedShopper, shot_image};

/// Longest scripted session, in seconds of clip time (beyond the policy's session timeout).
const MAX_SESSION_S: f64 = 30.0;

/// A clip with its annotated actions and the face measured in each neutral range (for placing a zoom).
#[derive(Debug, Clone)]
pub struct ScriptedClip {
    /// The clip.
    pub clip: Clip,
    /// Its annotated actions.
    pub actions: ClipActions,
    /// Face centre and height per neutral range (measured on its middle frame).
    faces: Vec<FaceBox>,
}

impl ScriptedClip {
    /// `clip` with its `actions` (faces not measured yet).
    pub fn new(clip: Clip, actions: ClipActions) -> Self {
        Self {
            clip,
            actions,
            faces: vec![],
        }
    }

    /// Measures the face in the middle frame of every neutral range.
    pub fn measure_faces(&mut self, vision: &mut Vision) -> anyhow::Result<()> {
        self.faces = self
            .actions
            .neutral
            .iter()
            .map(|&[a, b]| -> anyhow::Result<FaceBox> {
                let image = self.decode((a + b) / 2)?;
                let analysis = vision.analyze(&image)?;
                let obs = observation(&analysis, image.width, image.height, false);
                Ok(obs.face.map(|f| {
                    let (x0, y0, x1, y1) = f.extent();
                    (((x0 + x1) * 0.5, (y0 + y1) * 0.5), y1 - y0)
                }))
            })
            .collect::<anyhow::Result<_>>()?;
        vision.reset();
        Ok(())
    }

    fn decode(&self, frame: usize) -> anyhow::Result<RgbImage> {
        let path = self.clip.files.get(frame).ok_or_else(|| {
            anyhow::anyhow!(
                "frame {frame} is past the end of {}",
                self.clip.dir.display()
            )
        })?;
        decode_file(path).map_err(anyhow::Error::from)
    }

    /// The face of `frame` (that of the neutral range holding it).
    fn face(&self, frame: usize) -> FaceBox {
        self.actions
            .neutral
            .iter()
            .position(|&[a, b]| (a..=b).contains(&frame))
            .and_then(|i| self.faces.get(i).copied().flatten())
    }

    /// Plays the scripted shopper into `push` (which answers the session's guidance, or `None` once it decided)
    /// until it decides; the frames shown and the last guidance.
    fn play(
        &self,
        seed: u64,
        challenges: &[Challenge],
        mut push: impl FnMut(&RgbImage, f64) -> Result<Option<Guidance>, FacePayError>,
    ) -> Result<u64, FacePayError> {
        let vision_err = |e: anyhow::Error| FacePayError::Vision {
            kind: VisionFailure::Image,
            detail: format!("{e:#}"),
        };
        let first = self.decode(0).map_err(vision_err)?;
        let oval = Oval::for_frame(&LivenessPolicy::default().oval, first.width, first.height);
        let mut shopper = ScriptedShopper::new(
            &self.actions,
            self.clip.fps,
            seed,
            ((oval.cx, oval.cy), oval.ry),
            challenges,
        );
        let mut last: Option<Guidance> = None;
        let frames = (MAX_SESSION_S * self.clip.fps).ceil() as u64;
        for k in 0..frames {
            let t = k as f64 / self.clip.fps;
            let shot = shopper.next(last.as_ref(), t, &mut |i| self.face(i));
            let image = shot_image(&self.decode(shot.frame).map_err(vision_err)?, &shot);
            match push(&image, t)? {
                Some(g) => last = Some(g),
                None => return Ok(k + 1),
            }
        }
        Err(FacePayError::LivenessTimedOut {
            reason: TimeoutReason::InputEnded,
            detail: format!(
                "the scripted shopper ran {MAX_SESSION_S} s of {} without a decision",
                self.clip.dir.display()
            ),
        })
    }
}

/// Enrols with the scripted shopper over `scripted`: the summary and the frames shown.
pub fn enrol_scripted(
    capture: &EnrolmentCapture,
    scripted: &ScriptedClip,
    printer: &GuidancePrinter,
    seed: u64,
) -> Result<(EnrolmentSummary, usize), FacePayError> {
    let mut summary = None;
    let frames = scripted.play(seed, &capture.challenges(), |image, t| {
        printer.take_guidance();
        match capture.push_image(image, t)? {
            EnrolmentStep::Capturing(g) => Ok(Some(g)),
            EnrolmentStep::Enrolled(s) => {
                summary = Some(s);
                Ok(None)
            }
        }
    })?;
    let summary = summary.ok_or(FacePayError::InvalidState {
        state: SessionState::Undecided,
    })?;
    Ok((summary, frames as usize))
}

/// Pays with the scripted shopper over `scripted` until the face is verified (or the session fails), writing each
/// frame to `recording` when given; `cancel_after` cancels after that many frames.
pub fn pay_scripted(
    session: &PaymentSession,
    scripted: &ScriptedClip,
    cancel_after: Option<u64>,
    printer: &GuidancePrinter,
    mut recording: Option<&mut Recording>,
    seed: u64,
) -> Result<(), FacePayError> {
    let mut n = 0u64;
    scripted.play(seed, &session.challenges(), |image, t| {
        if cancel_after.is_some_and(|c| n >= c) {
            session.cancel();
        }
        n += 1;
        printer.take_guidance();
        let step = session.push_image(image, t);
        let answered = printer.take_guidance();
        if let (Some(recording), Some(g)) = (recording.as_deref_mut(), answered) {
            recording.frame(image, None, t, &g)?;
        }
        match step? {
            PaymentStep::Capturing(g) => Ok(Some(g)),
            PaymentStep::Verified { .. } => Ok(None),
        }
    })?;
    Ok(())
}
