//! `facepay pay`: pays one order against a running `facepay-server` with a clip, for scripts — creates the order
//! with the merchant key, fetches the challenge, runs the liveness session on the clip, matches against the
//! template enrolled by `facepay enroll`, signs and submits.
//!
//! Also the pieces `demo` and `enroll` share: pushing a clip through a session while printing each guidance
//! change, writing the payment session's QA recording (`demo --record`), and the receipt text.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::wire::CreateOrderRequest;
use facepay_core::flow::{
    FacePay, FacePayError, FlowEvent, FlowListener, PaymentSession, PaymentStep, Receipt,
    StorageFailure, VisionFailure,
};
use facepay_core::liveness::{Guidance, GuidanceState, TimeoutReason, challenge_name};
use facepay_core::vision::image::RgbImage;
use facepay_qa::clip::Recorder;

use crate::clip_frames::Clip;
use crate::enroll::{ServerArgs, open_device};
use crate::scripted::Actions;
use crate::scripted_clip::{ScriptedClip, pay_scripted};

/// Arguments of `facepay pay`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Clip folder to pay with (frames + clip.json).
    #[arg(long)]
    clip: PathBuf,
    /// Start at this frame of the clip.
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// Pay with a simulated scripted shopper composed from the clip's annotated actions (docs/clip-actions.toml)
    /// instead of playing the clip straight (a recording cannot follow the server's prompts).
    #[arg(long, conflicts_with = "skip")]
    scripted: bool,
    /// The order id (default: a fresh `order-<unix ms>`).
    #[arg(long)]
    order_id: Option<String>,
    /// Amount in minor units.
    #[arg(long, default_value_t = 1250)]
    amount: u64,
    /// ISO 4217 currency.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Print one JSON object on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Runs `facepay pay`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let clip = Clip::open(&args.clip)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let out = Output::new(args.json);
    let device = open_device(&args.server, None)?;
    let merchant = args.server.merchant()?;
    let order_id = args
        .order_id
        .clone()
        .unwrap_or_else(|| format!("order-{}", crate::enroll::unix_ms()));
    let order = rt
        .block_on(merchant.create_order(&CreateOrderRequest {
            order_id: order_id.clone(),
            amount_minor: args.amount,
            currency: args.currency.clone(),
            items_digest: sha256(format!("{order_id}:{}", args.amount).as_bytes()),
        }))
        .context("creating the order")?;
    let printer = Arc::new(GuidancePrinter::new(out));
    let result = if args.scripted {
        let scripted = scripted_clip(clip)?;
        printer.say(
            "SIMULATED shopper: a scripted shopper composed from the clip's annotated actions",
        );
        start_payment(&rt, &device, &order.client_token, &printer).and_then(|session| {
            pay_scripted(&session, &scripted, None, &printer, None, 1)?;
            rt.block_on(session.pay())
        })
    } else {
        pay_with_clip(&rt, &device, &order.client_token, &clip, args.skip, printer)
    };
    match result {
        Ok(receipt) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "outcome": "paid", "receipt": receipt })
                );
            } else {
                print_receipt(&receipt);
            }
            Ok(())
        }
        Err(e) => Err(failure(args.json, "refused", e)),
    }
}

/// `clip` with its annotated actions (by folder name) and its neutral faces measured.
fn scripted_clip(clip: Clip) -> anyhow::Result<ScriptedClip> {
    let name = clip
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let actions = Actions::committed()?;
    let annotated = actions.get(&name).with_context(|| {
        format!("clip {name} has no annotated actions in docs/clip-actions.toml")
    })?;
    let mut scripted = ScriptedClip::new(clip, annotated.clone());
    scripted.measure_faces(
        &mut facepay_qa::paths::load_default_vision().context("loading the vision models")?,
    )?;
    Ok(scripted)
}

/// Opens a payment for `client_token`, pushes the clip's frames from `skip` until the face is verified, then pays.
pub fn pay_with_clip(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    clip: &Clip,
    skip: usize,
    printer: Arc<GuidancePrinter>,
) -> Result<Receipt, FacePayError> {
    let session = start_payment(rt, device, client_token, &printer)?;
    push_clip(&session, clip, skip, None, &printer, None)?;
    rt.block_on(session.pay())
}

/// Opens a payment for `client_token` with `printer` as its listener and says which challenges the server's nonce
/// asks for.
pub fn start_payment(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    printer: &Arc<GuidancePrinter>,
) -> Result<PaymentSession, FacePayError> {
    let listener: Arc<dyn FlowListener> = printer.clone();
    let session = rt.block_on(device.start_payment(client_token, listener))?;
    let names: Vec<&str> = session
        .challenges()
        .iter()
        .map(|c| challenge_name(*c))
        .collect();
    printer.say(&format!(
        "Challenges from the server's nonce: {}",
        names.join(", ")
    ));
    Ok(session)
}

/// Pushes clip frames from `skip` until the face is verified (or the session fails), writing each frame to
/// `recording` when given. `cancel_after` cancels the session after that many frames, to show cancellation.
pub fn push_clip(
    session: &PaymentSession,
    clip: &Clip,
    skip: usize,
    cancel_after: Option<u64>,
    printer: &GuidancePrinter,
    mut recording: Option<&mut Recording>,
) -> Result<(), FacePayError> {
    for (n, frame) in clip.frames(skip).into_iter().enumerate() {
        if cancel_after.is_some_and(|c| n as u64 >= c) {
            session.cancel();
        }
        let frame = frame.map_err(|e| FacePayError::Vision {
            kind: VisionFailure::Image,
            detail: format!("{e:#}"),
        })?;
        // A JPEG frame is recorded byte for byte, so a replay decodes exactly the pixels the session saw.
        let jpeg = match (&recording, clip.files.get(frame.index)) {
            (Some(_), Some(path)) if is_jpeg_file(path) => {
                Some(std::fs::read(path).map_err(|e| FacePayError::Vision {
                    kind: VisionFailure::Image,
                    detail: format!("reading {}: {e}", path.display()),
                })?)
            }
            _ => None,
        };
        let verified = push_recorded(
            session,
            printer,
            recording.as_deref_mut(),
            &frame.image,
            jpeg.as_deref(),
            frame.t,
        )?;
        if verified {
            return Ok(());
        }
    }
    Err(FacePayError::LivenessTimedOut {
        reason: TimeoutReason::InputEnded,
        detail: format!(
            "the clip {} ended before the liveness session decided",
            clip.dir.display()
        ),
    })
}

/// Whether a frame file is a JPEG by its extension.
fn is_jpeg_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg"))
}

/// Pushes one upright frame into the payment session and, when recording, writes it with the guidance the
/// session answered (`jpeg`: the frame's own JPEG bytes, written as they are). True once the face is verified.
pub fn push_recorded(
    session: &PaymentSession,
    printer: &GuidancePrinter,
    recording: Option<&mut Recording>,
    image: &RgbImage,
    jpeg: Option<&[u8]>,
    t: f64,
) -> Result<bool, FacePayError> {
    printer.take_guidance();
    let step = session.push_image(image, t);
    // The session's answer to this frame (also when it decided on it); none when the frame was refused unseen.
    if let (Some(recording), Some(g)) = (recording, printer.take_guidance()) {
        recording.frame(image, jpeg, t, &g)?;
    }
    Ok(matches!(step?, PaymentStep::Verified { .. }))
}

/// The QA recording of a payment session (`facepay demo --record DIR`): every frame pushed as JPEG, and a
/// `clip.json` with timestamps, nonce, challenges, guidance timeline and the liveness verdict, through
/// [`Recorder`]. `facepay replay DIR` replays it.
pub struct Recording {
    recorder: Recorder,
}

impl Recording {
    /// Starts recording `session` into `dir` (created; must not hold a recording yet).
    pub fn start(dir: &Path, session: &PaymentSession, fps: f64) -> Result<Self, FacePayError> {
        let recorder = Recorder::create(dir, fps, &session.nonce(), &session.challenges())
            .map_err(|e| FacePayError::storage(StorageFailure::Write, format!("recording: {e}")))?;
        Ok(Self { recorder })
    }

    /// Writes one frame with its timestamp and guidance.
    pub fn frame(
        &mut self,
        image: &RgbImage,
        jpeg: Option<&[u8]>,
        t: f64,
        g: &Guidance,
    ) -> Result<(), FacePayError> {
        match jpeg {
            Some(bytes) => self.recorder.record_jpeg(bytes, t, g),
            None => self.recorder.record(image, t, g),
        }
        .map_err(|e| FacePayError::storage(StorageFailure::Write, format!("recording: {e}")))
    }

    /// Writes `clip.json` with the session's liveness verdict (none if it never decided) and returns the folder.
    pub fn finish(self, session: &PaymentSession) -> Result<PathBuf, FacePayError> {
        self.recorder
            .finish(session.liveness_verdict().as_ref())
            .map_err(|e| FacePayError::storage(StorageFailure::Write, format!("recording: {e}")))
    }
}

/// Where human-readable progress goes: stdout, or stderr when stdout carries the JSON answer.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Progress to stderr when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints one progress line.
    pub fn say(&self, line: &str) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// A [`FlowListener`] printing a line whenever the prompt changes (not every frame), and the flow's milestones.
/// It also keeps the latest guidance, for the recording.
pub struct GuidancePrinter {
    out: Output,
    last: std::sync::Mutex<Option<GuidanceState>>,
    latest: std::sync::Mutex<Option<Guidance>>,
}

impl GuidancePrinter {
    /// A printer writing to `out`.
    pub fn new(out: Output) -> Self {
        Self {
            out,
            last: std::sync::Mutex::new(None),
            latest: std::sync::Mutex::new(None),
        }
    }

    /// The guidance of the last frame since the previous call (`None` if no frame was answered since).
    pub fn take_guidance(&self) -> Option<Guidance> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Prints a line and forgets the last prompt (the next prompt is printed even if unchanged).
    pub fn say(&self, line: &str) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.out.say(line);
    }
}

impl FlowListener for GuidancePrinter {
    fn on_event(&self, event: FlowEvent) {
        match event {
            FlowEvent::Guidance(g) => {
                *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(g);
                let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
                if *last != Some(g.state) {
                    *last = Some(g.state);
                    self.out.say(&format!(
                        "  frame {:>3}  {:<13} {}  ({:.0}%)",
                        g.frame_index,
                        g.state.name(),
                        g.message,
                        g.progress * 100.0
                    ));
                }
            }
            FlowEvent::Verifying => self
                .out
                .say("  verifying: embedding the best frames and matching on the device"),
            FlowEvent::Paying => self
                .out
                .say("  paying: signed with the device key, sending to the checkout server"),
            FlowEvent::Enrolled(s) => self.out.say(&format!(
                "  enrolled: {} embeddings from frames {:?}, sealed (AES-256-GCM)",
                s.embeddings, s.frames
            )),
            FlowEvent::Done(r) => self.out.say(&format!("  done: payment {}", r.payment_id)),
            FlowEvent::Failed(e) => self.out.say(&format!("  stopped: {e}")),
        }
    }
}

/// A failed `enroll` or `pay`: with `--json`, prints `{"outcome": outcome, "error": …}` on stdout; returns the error
/// for the exit status and the `error:` line.
pub fn failure(json: bool, outcome: &str, e: FacePayError) -> anyhow::Error {
    if json {
        println!(
            "{}",
            serde_json::json!({ "outcome": outcome, "error": error_json(&e) })
        );
    }
    e.into()
}

/// `{"kind": …, "message": …}` plus the score and threshold of a non-match, the code of a decline, or the typed
/// reason of a liveness failure or time-out.
pub fn error_json(e: &FacePayError) -> serde_json::Value {
    let mut v = serde_json::json!({ "kind": e.kind(), "message": e.to_string() });
    if let FacePayError::NotMatched { score, threshold } = e {
        v["score"] = serde_json::json!(score);
        v["threshold"] = serde_json::json!(threshold);
    }
    match e {
        FacePayError::Declined { code, .. } => v["code"] = serde_json::json!(code),
        FacePayError::LivenessFailed { reason, .. } => v["reason"] = serde_json::json!(reason),
        FacePayError::LivenessTimedOut { reason, .. } => v["reason"] = serde_json::json!(reason),
        _ => {}
    }
    v
}

/// Prints the receipt on stdout.
pub fn print_receipt(r: &Receipt) {
    let challenges: Vec<&str> = r.challenges.iter().map(|c| challenge_name(*c)).collect();
    println!("Receipt");
    println!(
        "  order        {} ({} {})",
        r.order_id,
        money(r.amount_minor),
        r.currency
    );
    println!("  payment id   {}", r.payment_id);
    println!(
        "  match score  {:.3} (threshold {:.3})",
        r.match_score, r.match_threshold
    );
    println!(
        "  liveness     {} (challenges: {}; passive anti-spoof score: {})",
        r.liveness.as_str(),
        challenges.join(", "),
        r.passive_score
            .map_or("models not installed".to_owned(), |s| format!("{s:.3}"))
    );
    println!("  counter      {}", r.counter);
}

/// Minor units as `12.50`.
fn money(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}
