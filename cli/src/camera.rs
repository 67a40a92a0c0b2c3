//! The webcam in the CLI: `facepay cameras` lists the devices, and `facepay demo --camera` enrols and pays from
//! one. Both need the `camera` feature (`cargo build -p facepay --features camera`, which needs libclang-dev);
//! without it they say so and exit non-zero.
//!
//! Frames are converted to RGB once, here, then pushed into the enrolment capture or payment session; the
//! guidance prompts print live as they change (through the [`GuidancePrinter`]).

use crate::pay::Recording;
#[cfg(feature = "camera")]
use crate::pay::{GuidancePrinter, push_recorded};
use facepay_core::enrolment::EnrolmentCapture;
use facepay_core::flow::{EnrolmentSummary, FacePayError, PaymentSession};
#[cfg(feature = "camera")]
use facepay_core::{flow::VisionFailure, liveness::TimeoutReason};

/// Arguments of `facepay cameras`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object on stdout: `{"cameras": [{"index", "name", "description"}, …]}`.
    #[arg(long)]
    json: bool,
}

/// The webcam type of this build: nokhwa's stream, or (without the `camera` feature) a type with no values, so
/// code that needs a camera compiles but can never run.
#[cfg(feature = "camera")]
pub type Webcam = facepay_core::camera::Camera;
/// The webcam type of this build: without the `camera` feature, a type with no values.
#[cfg(not(feature = "camera"))]
pub enum Webcam {}

/// The error of a build without webcam support, for `what` (`--camera`, `facepay cameras`).
#[cfg(not(feature = "camera"))]
fn no_camera(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs webcam support (the `camera` feature), which this build does not include: rebuild with \
         `cargo build -p facepay --features camera` (Debian/Ubuntu: apt-get install libclang-dev first), or pay \
         with a recorded clip (the default)"
    )
}

/// Runs `facepay cameras`: one line per device (or "no camera found"), or the JSON list.
#[cfg(feature = "camera")]
pub fn run(args: Args) -> anyhow::Result<()> {
    let cameras = facepay_core::camera::list_cameras()?;
    if args.json {
        println!("{}", serde_json::json!({ "cameras": cameras }));
    } else if cameras.is_empty() {
        println!("no camera found");
    } else {
        for c in &cameras {
            println!("{:>3}  {}  ({})", c.index, c.name, c.description);
        }
    }
    Ok(())
}

/// Runs `facepay cameras`: this build has no webcam support.
#[cfg(not(feature = "camera"))]
pub fn run(_args: Args) -> anyhow::Result<()> {
    Err(no_camera("facepay cameras"))
}

/// Opens webcam `index` at the default request (1280×720, 30 fps, nearest offered format).
#[cfg(feature = "camera")]
pub fn open(index: u32) -> anyhow::Result<Webcam> {
    use anyhow::Context;
    let camera = facepay_core::camera::Camera::open(index, Default::default())
        .with_context(|| format!("opening camera {index}"))?;
    Ok(camera)
}

/// Opens a webcam: this build has no webcam support.
#[cfg(not(feature = "camera"))]
pub fn open(_index: u32) -> anyhow::Result<Webcam> {
    Err(no_camera("--camera"))
}

/// A human-readable description of the open stream.
#[cfg(feature = "camera")]
pub fn describe(camera: &Webcam) -> String {
    let f = camera.format();
    format!(
        "camera {}: {}x{} {} at {} fps",
        camera.index(),
        f.width,
        f.height,
        f.pixel_format,
        f.fps
    )
}

/// A human-readable description of the open stream (never called without the feature).
#[cfg(not(feature = "camera"))]
pub fn describe(camera: &Webcam) -> String {
    match *camera {}
}

/// The stream's frame rate (for a recording's `fps`).
#[cfg(feature = "camera")]
pub fn fps(camera: &Webcam) -> f64 {
    f64::from(camera.format().fps.max(1))
}

/// The stream's frame rate (never called without the feature).
#[cfg(not(feature = "camera"))]
pub fn fps(camera: &Webcam) -> f64 {
    match *camera {}
}

/// How long a live capture may run: the policy's session timeout (the session ends itself by then) plus a margin.
#[cfg(feature = "camera")]
fn live_timeout() -> std::time::Duration {
    let policy = facepay_core::liveness::LivenessPolicy::default();
    std::time::Duration::from_secs_f64(policy.timing.session_timeout_s + 10.0)
}

/// A camera failure as the flow's error (the demo reports it like any other refusal).
#[cfg(feature = "camera")]
fn camera_error(e: facepay_core::camera::CameraError) -> FacePayError {
    FacePayError::Vision {
        kind: VisionFailure::Image,
        detail: format!("camera: {e}"),
    }
}

/// Enrols from the webcam: pushes frames until the template is stored; returns the summary and the frame count.
#[cfg(feature = "camera")]
pub fn enrol(
    capture: &EnrolmentCapture,
    camera: &mut Webcam,
) -> Result<(EnrolmentSummary, usize), FacePayError> {
    use facepay_core::flow::EnrolmentStep;
    use std::ops::ControlFlow;
    let mut image = facepay_core::vision::image::RgbImage::default();
    let mut frames = 0usize;
    let answer = camera
        .feed(live_timeout(), |frame, t| {
            frames += 1;
            let step = match frame.to_rgb_into(&mut image) {
                Ok(()) => capture.push_image(&image, t),
                // The capture counts an unreadable frame as one without a face.
                Err(_) => capture.push_frame(frame, t),
            };
            match step {
                Ok(EnrolmentStep::Capturing(_)) => ControlFlow::Continue(()),
                Ok(EnrolmentStep::Enrolled(summary)) => ControlFlow::Break(Ok(summary)),
                Err(e) => ControlFlow::Break(Err(e)),
            }
        })
        .map_err(camera_error)?;
    match answer {
        Some(result) => result.map(|summary| (summary, frames)),
        None => Err(FacePayError::LivenessTimedOut {
            reason: TimeoutReason::InputEnded,
            detail: "the camera capture ran out of time before the enrolment session decided"
                .into(),
        }),
    }
}

/// Enrols from the webcam (never called without the feature).
#[cfg(not(feature = "camera"))]
pub fn enrol(
    _capture: &EnrolmentCapture,
    camera: &mut Webcam,
) -> Result<(EnrolmentSummary, usize), FacePayError> {
    match *camera {}
}

/// Pushes webcam frames into the payment session until the face is verified (or the session fails), writing each
/// frame to `recording` when given; `cancel_after` cancels the session after that many frames.
#[cfg(feature = "camera")]
pub fn push(
    session: &PaymentSession,
    camera: &mut Webcam,
    cancel_after: Option<u64>,
    printer: &GuidancePrinter,
    mut recording: Option<&mut Recording>,
) -> Result<(), FacePayError> {
    use facepay_core::vision::frame::Pixels;
    use std::ops::ControlFlow;
    let mut image = facepay_core::vision::image::RgbImage::default();
    let mut frames = 0u64;
    let answer = camera
        .feed(live_timeout(), |frame, t| {
            if cancel_after.is_some_and(|c| frames >= c) {
                session.cancel();
            }
            frames += 1;
            let pushed = match frame.to_rgb_into(&mut image) {
                Ok(()) => {
                    // A webcam's MJPEG frame is recorded byte for byte, anything else encoded as JPEG.
                    let jpeg = match frame.pixels {
                        Pixels::Encoded(bytes) => Some(bytes),
                        _ => None,
                    };
                    push_recorded(session, printer, recording.as_deref_mut(), &image, jpeg, t)
                }
                // Counted by the session as a frame without a face; not recorded (it has no image).
                Err(_) => session
                    .push_frame(frame, t)
                    .map(|step| matches!(step, facepay_core::flow::PaymentStep::Verified { .. })),
            };
            match pushed {
                Ok(false) => ControlFlow::Continue(()),
                Ok(true) => ControlFlow::Break(Ok(())),
                Err(e) => ControlFlow::Break(Err(e)),
            }
        })
        .map_err(camera_error)?;
    answer.unwrap_or_else(|| {
        Err(FacePayError::LivenessTimedOut {
            reason: TimeoutReason::InputEnded,
            detail: "the camera capture ran out of time before the liveness session decided".into(),
        })
    })
}

/// Pushes webcam frames (never called without the feature).
#[cfg(not(feature = "camera"))]
pub fn push(
    _session: &PaymentSession,
    camera: &mut Webcam,
    _cancel_after: Option<u64>,
    _printer: &crate::pay::GuidancePrinter,
    _recording: Option<&mut Recording>,
) -> Result<(), FacePayError> {
    match *camera {}
}
