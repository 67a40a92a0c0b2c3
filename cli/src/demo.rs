//! `facepay demo`: the whole flow on built-in defaults, in one process.
//!
//! Starts the checkout server in-process on loopback (SQLite in a temporary directory, TLS with a freshly
//! generated self-signed certificate that the client pins), creates a merchant, a shopper enrolment token and a
//! sample order; enrols the shopper, registers the device, and pays, printing each guidance change and the receipt.
//! `--impostor` pays as another person instead and shows the refusal by the face match, checking that the server
//! recorded no payment.
//!
//! `--camera` (builds with the `camera` feature) enrols and pays from a webcam instead, printing the prompts live;
//! `--record DIR` writes the payment session as a QA recording that `facepay replay DIR` replays.
//!
//! The server runs the real challenge policy (every kind, 3–4 per payment). Recorded clips cannot follow prompts,
//! so the shopper — and the impostor — is a **simulated** scripted shopper ([`crate::scripted`]): real frames of a
//! live clip composed, for whatever the nonce asks, into a person answering the prompts (a mirrored turn for a side
//! the clip lacks, no dwell at full profile, a digital zoom for moving closer). The demo says so in its output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use facepay_core::checkout::client::{ClientConfig, MerchantClient, TrustRoots};
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::checkout::wire::CreateOrderRequest;
use facepay_core::flow::{
    ConfigSetting, FacePay, FacePayConfig, FacePayError, PaymentSession, Receipt,
};
use facepay_core::liveness::{LivenessPolicy, challenge_name, parse_challenges};
use facepay_core::template::MemoryKeyStore;
use facepay_server::{DatabaseTarget, RunningServer, Server, ServerConfig, TlsMode};

use crate::camera::{self, Webcam};
use crate::clip_frames::{Clip, clips_dir};
use crate::pay::{GuidancePrinter, Output, Recording, error_json, print_receipt, start_payment};
use crate::scripted::{Actions, ClipActions};
use crate::scripted_clip::{ScriptedClip, enrol_scripted, pay_scripted};

/// Arguments of `facepay demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder holding the clips (default: $FACEPAY_SHARED/data/clips, else <workspace>/../shared/data/clips); a
    /// clip not found there is looked for in the `liveness` folder beside it.
    #[arg(long)]
    clips: Option<PathBuf>,
    /// The shopper's clip (annotated in docs/clip-actions.toml): the scripted shopper enrols and pays with it.
    #[arg(long, default_value = "live-tranvanluyt")]
    shopper: String,
    /// Pay as another person (the impostor completes the challenges) and show the refusal.
    #[arg(long, conflicts_with = "camera")]
    impostor: bool,
    /// The impostor's clips (other people than the shopper, annotated in docs/clip-actions.toml): each payment
    /// attempt uses the first that can show the nonce's challenges.
    #[arg(long, value_delimiter = ',', default_value = "live-turning,live-d6")]
    impostor_clip: Vec<String>,
    /// Enrol and pay from the webcam instead of the clips (builds with the `camera` feature).
    #[arg(long)]
    camera: bool,
    /// The webcam to use (see `facepay cameras`).
    #[arg(long, default_value_t = 0, requires = "camera")]
    camera_index: u32,
    /// Write the payment session's recording (frames, timestamps, nonce, challenges, guidance, verdict) here,
    /// for `facepay replay DIR`.
    #[arg(long)]
    record: Option<PathBuf>,
    /// The demo server's challenge set (a server policy; default: every kind, as a real payment gets).
    #[arg(
        long,
        default_value = "blink,turn_left,turn_right,look_up,look_down,move_closer"
    )]
    challenge_set: String,
    /// Cancel the payment after this many frames (shows cancellation: no payment is made).
    #[arg(long)]
    cancel_after: Option<u64>,
    /// Print one JSON object on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Where the demo's frames come from.
enum Source {
    /// Scripted shoppers over recorded clips: the shopper's (enrolment) and the payers' (the shopper's again, or
    /// the impostor's clips).
    Clips {
        shopper: Box<ScriptedClip>,
        payers: Vec<ScriptedClip>,
    },
    /// A webcam, for both.
    Camera(Webcam),
}

impl Source {
    /// The clips named by the arguments, or the webcam; checked before anything starts.
    fn open(args: &Args) -> anyhow::Result<Self> {
        if args.camera {
            return Ok(Self::Camera(camera::open(args.camera_index)?));
        }
        let clips = clips_dir(args.clips.as_deref());
        if !clips.is_dir() {
            bail!(
                "the clips folder {} does not exist: pass --clips DIR (a folder holding {}/ and {}/), or set \
                 FACEPAY_SHARED to the shared data folder (the one holding data/clips)",
                clips.display(),
                args.shopper,
                args.impostor_clip.join("/, ")
            );
        }
        let actions = Actions::committed()?;
        let shopper = scripted_clip(&clips, &args.shopper, &actions)?;
        let payers = if args.impostor {
            args.impostor_clip
                .iter()
                .map(|name| scripted_clip(&clips, name, &actions))
                .collect::<anyhow::Result<_>>()?
        } else {
            vec![shopper.clone()]
        };
        Ok(Self::Clips {
            shopper: Box::new(shopper),
            payers,
        })
    }
}

/// The clip `name` (in `clips`, else in the `liveness` folder beside it) with its annotated actions.
fn scripted_clip(clips: &Path, name: &str, actions: &Actions) -> anyhow::Result<ScriptedClip> {
    let dir = [clips.to_path_buf(), clips.with_file_name("liveness")]
        .into_iter()
        .map(|d| d.join(name))
        .find(|d| d.is_dir())
        .with_context(|| {
            format!(
                "clip {name} is neither in {} nor in the liveness folder beside it",
                clips.display()
            )
        })?;
    let annotated: &ClipActions = actions.get(name).with_context(|| {
        format!("clip {name} has no annotated actions in docs/clip-actions.toml")
    })?;
    Ok(ScriptedClip::new(Clip::open(&dir)?, annotated.clone()))
}

/// Runs `facepay demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut source = Source::open(&args)?;
    let challenge_set = parse_challenges(&args.challenge_set)?;
    let out = Output::new(args.json);
    let printer = Arc::new(GuidancePrinter::new(out));

    // The models load on their own thread while the server starts.
    let loading = std::thread::spawn(facepay_qa::paths::load_default_vision);
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut config = ServerConfig::new(DatabaseTarget::Sqlite(temp.path().join("checkout.sqlite")));
    let cert = temp.path().join("server-cert.pem");
    config.tls = TlsMode::SelfSigned {
        cert_out: cert.clone(),
    };
    config.challenge_set = challenge_set.clone();
    if args.impostor {
        // The impostor's footage holds fewer actions than the shopper's (no clip but the shopper's shows a look
        // up): it asks for fresh challenges until one it can show (see `pay`), more than the default limits allow.
        config.limits.challenges_per_order = MAX_CHALLENGE_REQUESTS;
        config.limits.challenges_per_device = MAX_CHALLENGE_REQUESTS;
    }
    let server = rt
        .block_on(Server::start(config))
        .context("starting the checkout server")?;
    let client = ClientConfig::new(
        server.base_url(),
        TrustRoots::PinnedCertPem(std::fs::read(&cert)?),
    );
    let names: Vec<&str> = challenge_set.iter().map(|c| challenge_name(*c)).collect();
    printer.say(&format!(
        "Checkout server on {} (TLS, self-signed certificate pinned by the client; SQLite in {})",
        server.base_url(),
        temp.path().display()
    ));
    printer.say(&format!(
        "Challenge set: {} (server policy)",
        names.join(", ")
    ));
    if !args.camera {
        printer.say(
            "SIMULATED shopper: recorded clips cannot follow prompts, so a scripted shopper composes real frames \
             into a person answering them (a mirrored turn for a side the clip lacks, no dwell at full profile, a \
             digital zoom for moving closer)",
        );
    }

    let merchant = rt.block_on(server.create_merchant("Demo Shop"))?;
    let merchant_client = MerchantClient::new(client.clone(), merchant.api_key.clone())?;
    let enrolment_token = rt.block_on(merchant_client.create_enrollment("shopper-1"))?;
    let items = r#"[{"sku":"coffee-beans-1kg","qty":1,"price_minor":1250}]"#;
    let order = rt.block_on(merchant_client.create_order(&CreateOrderRequest {
        order_id: "demo-order-0001".into(),
        amount_minor: 1250,
        currency: "EUR".into(),
        items_digest: sha256(items.as_bytes()),
    }))?;
    printer.say(&format!(
        "Merchant {} created order {} for 12.50 EUR",
        merchant.merchant_id, order.order.order_id
    ));

    let mut vision = loading
        .join()
        .map_err(|_| anyhow!("the model loading thread panicked"))??;
    if let Source::Clips { shopper, payers } = &mut source {
        shopper.measure_faces(&mut vision)?;
        for payer in payers {
            payer.measure_faces(&mut vision)?;
        }
    }
    let device = FacePay::new(
        FacePayConfig {
            server: client,
            device_id: "demo-device-1".into(),
            state_dir: temp.path().join("device"),
            policy: LivenessPolicy::default(),
            enrolment_challenges: None,
        },
        vision,
        Arc::new(SoftwareSigner::generate()?),
        Arc::new(MemoryKeyStore::new()),
    )?;
    let models_s = started.elapsed().as_secs_f64();
    printer.say(&format!(
        "Server up and models loaded after {models_s:.2} s"
    ));

    let capture = device.start_enrolment(printer.clone())?;
    let (summary, next_frame, enrolled_from) = match &mut source {
        Source::Clips { shopper, .. } => {
            printer.say(&format!(
                "Enrolling the shopper (simulated, scripted from {}) …",
                shopper.clip.dir.display()
            ));
            let (summary, frames) = enrol_scripted(&capture, shopper, &printer, 1)?;
            (summary, frames, args.shopper.clone())
        }
        Source::Camera(webcam) => {
            let name = camera::describe(webcam);
            printer.say(&format!(
                "Enrolling the shopper from {name}: look into the camera and follow the prompts …"
            ));
            let (summary, frames) = camera::enrol(&capture, webcam)?;
            (summary, frames, name)
        }
    };
    drop(capture);
    let enrolled_s = started.elapsed().as_secs_f64();
    let registered = rt.block_on(device.register_device(&enrolment_token.enrollment_token))?;
    printer.say(&format!(
        "Enrolled after {next_frame} frames of {enrolled_from} ({} embeddings, agreement ≥ {:.2}); device {} \
         registered",
        summary.embeddings, summary.min_agreement, registered.device_id
    ));

    let payer = match &mut source {
        Source::Clips { payers, .. } => {
            let names: Vec<String> = payers
                .iter()
                .map(|p| p.clip.dir.display().to_string())
                .collect();
            printer.say(&format!(
                "Paying (simulated, scripted from {}){} …",
                names.join(" or "),
                if args.impostor {
                    ": another person, the impostor, answering the prompts"
                } else {
                    ""
                }
            ));
            Payer::Clips(payers)
        }
        Source::Camera(webcam) => {
            printer.say(&format!(
                "Paying with {}: follow the prompts …",
                camera::describe(webcam)
            ));
            Payer::Camera(webcam)
        }
    };
    let result = pay(
        &rt,
        &device,
        &order.client_token,
        payer,
        args.cancel_after,
        &printer,
        args.record.as_deref(),
    );
    let payments = rt.block_on(server.store().table_counts())?.payments;
    let timings = Timings {
        models_s,
        enrolled_s,
        total_s: started.elapsed().as_secs_f64(),
    };
    finish(&rt, server, temp);
    report(&args, &result, payments, &summary, &timings)
}

/// What feeds one payment session's frames.
enum Feed<'a> {
    /// The scripted shopper over this clip.
    Scripted(&'a ScriptedClip),
    /// The webcam.
    Camera(&'a mut Webcam),
}

/// Most challenges the demo asks for one payment while the payer's footage cannot show the nonce's list.
const MAX_CHALLENGE_REQUESTS: u32 = 64;

/// The frames the payment is made with.
enum Payer<'a> {
    /// A scripted shopper over the first of these clips that can show the nonce's challenges.
    Clips(&'a [ScriptedClip]),
    /// The webcam.
    Camera(&'a mut Webcam),
}

/// The payment: challenge, liveness on the clip or webcam (recorded into `record` when given), match, sign,
/// submit. A scripted payer whose clips cannot show the nonce's challenges (e.g. a look up that none of them
/// holds) asks for a fresh challenge, at most [`MAX_CHALLENGE_REQUESTS`] times, saying so.
fn pay(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    payer: Payer<'_>,
    cancel_after: Option<u64>,
    printer: &Arc<GuidancePrinter>,
    record: Option<&Path>,
) -> Result<Receipt, FacePayError> {
    let (session, feed) = match payer {
        Payer::Clips(clips) => {
            let (session, clip) = showable_session(rt, device, client_token, printer, clips)?;
            (session, Feed::Scripted(clip))
        }
        Payer::Camera(webcam) => (
            start_payment(rt, device, client_token, printer)?,
            Feed::Camera(webcam),
        ),
    };
    let fps = match &feed {
        Feed::Scripted(clip) => clip.clip.fps,
        Feed::Camera(webcam) => camera::fps(webcam),
    };
    let mut recording = record
        .map(|dir| Recording::start(dir, &session, fps))
        .transpose()?;
    let pushed = match feed {
        Feed::Scripted(clip) => {
            pay_scripted(&session, clip, cancel_after, printer, recording.as_mut(), 2)
        }
        Feed::Camera(webcam) => {
            camera::push(&session, webcam, cancel_after, printer, recording.as_mut())
        }
    };
    // The recording is finished whatever the session decided: a refusal is worth replaying too.
    if let Some(recording) = recording {
        let dir = recording.finish(&session)?;
        printer.say(&format!(
            "Recorded the payment session in {} (replay it: facepay replay {} --json)",
            dir.display(),
            dir.display()
        ));
    }
    pushed?;
    rt.block_on(session.pay())
}

/// A payment session whose challenges one of `clips` can show, with that clip: asks for a fresh challenge (the
/// previous session dropped) while none can.
fn showable_session<'a>(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    printer: &Arc<GuidancePrinter>,
    clips: &'a [ScriptedClip],
) -> Result<(PaymentSession, &'a ScriptedClip), FacePayError> {
    for _ in 0..MAX_CHALLENGE_REQUESTS {
        let session = start_payment(rt, device, client_token, printer)?;
        let list = session.challenges();
        if let Some(clip) = clips.iter().find(|c| c.actions.can_show(&list)) {
            return Ok((session, clip));
        }
        printer.say("The scripted payer's footage cannot show these challenges: asking for a fresh challenge");
    }
    Err(FacePayError::Config {
        setting: ConfigSetting::Tool,
        detail: format!(
            "no challenge list in {MAX_CHALLENGE_REQUESTS} requests could be shown from the payer's footage"
        ),
    })
}

/// Stops the server and removes the temporary directory.
fn finish(rt: &tokio::runtime::Runtime, server: RunningServer, temp: tempfile::TempDir) {
    rt.block_on(server.shutdown());
    drop(temp);
}

/// Seconds from the start of the demo to each milestone.
struct Timings {
    models_s: f64,
    enrolled_s: f64,
    total_s: f64,
}

/// Prints the receipt or the refusal (and the server's payment count); a refusal is an error exit.
fn report(
    args: &Args,
    result: &Result<Receipt, FacePayError>,
    payments: i64,
    enrolment: &facepay_core::flow::EnrolmentSummary,
    timings: &Timings,
) -> anyhow::Result<()> {
    if args.json {
        let (outcome, receipt, error) = match result {
            Ok(r) => ("paid", serde_json::to_value(r)?, serde_json::Value::Null),
            Err(e) => ("refused", serde_json::Value::Null, error_json(e)),
        };
        println!(
            "{}",
            serde_json::json!({
                "outcome": outcome,
                "impostor": args.impostor,
                "receipt": receipt,
                "error": error,
                "enrolment": enrolment,
                "server_payments": payments,
                "recording": args.record,
                "tls": true,
                "timings_s": {
                    "server_and_models": timings.models_s,
                    "enrolled": timings.enrolled_s,
                    "total": timings.total_s,
                },
            })
        );
    }
    match result {
        Ok(receipt) => {
            if !args.json {
                print_receipt(receipt);
                println!("Server payments recorded: {payments}");
                println!("Demo finished in {:.2} s", timings.total_s);
            }
            Ok(())
        }
        Err(e) => {
            if !args.json {
                println!("Refused: {e}");
                println!("Server payments recorded: {payments}");
            }
            Err(anyhow!("payment refused ({}): {e}", e.kind()))
        }
    }
}
