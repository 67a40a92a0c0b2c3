//! `facepay demo`: the whole flow on built-in defaults, in one process.
//!
//! Starts the checkout server in-process on loopback (SQLite in a temporary directory, TLS with a freshly
//! generated self-signed certificate that the client pins), creates a merchant, a shopper enrolment token and a
//! sample order; enrols the shopper from the first part of the `live-blink-7` clip (until its liveness session
//! passes), registers the device, and pays with the rest of the clip, printing each guidance change and the
//! receipt. `--impostor` pays with `live-turning` (another person) instead and shows the refusal, checking that
//! the server recorded no payment.
//!
//! `--camera` (builds with the `camera` feature) enrols and pays from a webcam instead, printing the prompts live;
//! `--record DIR` writes the payment session as a QA recording that `facepay replay DIR` replays.
//!
//! Recorded clips cannot follow prompts, so the demo server's **challenge set** (a server policy, see
//! `docs/protocol.md`) is set to what the clips contain: blinks only (`--challenge-set` changes it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use facepay_core::checkout::client::{ClientConfig, MerchantClient, TrustRoots};
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::checkout::wire::CreateOrderRequest;
use facepay_core::flow::{FacePay, FacePayConfig, FacePayError, Receipt};
use facepay_core::liveness::{LivenessPolicy, challenge_name, parse_challenges};
use facepay_core::template::MemoryKeyStore;
use facepay_server::{DatabaseTarget, RunningServer, Server, ServerConfig, TlsMode};

use crate::camera::{self, Webcam};
use crate::clip_frames::{Clip, clips_dir};
use crate::enroll::enrol_with_clip;
use crate::pay::{
    GuidancePrinter, Output, Recording, error_json, print_receipt, push_clip, start_payment,
};

/// Arguments of `facepay demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder holding the clips (default: $FACEPAY_SHARED/data/clips, else <workspace>/../shared/data/clips).
    #[arg(long)]
    clips: Option<PathBuf>,
    /// The shopper's clip: enrol from its first part, pay with the rest.
    #[arg(long, default_value = "live-blink-7")]
    shopper: String,
    /// Pay with a clip of another person and show the refusal.
    #[arg(long, conflicts_with = "camera")]
    impostor: bool,
    /// The impostor's clip (another person than the shopper).
    #[arg(long, default_value = "live-turning")]
    impostor_clip: String,
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
    /// The demo server's challenge set (what the recorded clips contain).
    #[arg(long, default_value = "blink")]
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
    /// Recorded clips: the shopper's (enrolment, then payment from the next frame) and the payer's.
    Clips { shopper: Clip, payer: Clip },
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
                args.impostor_clip
            );
        }
        let shopper = Clip::open(&clips.join(&args.shopper))?;
        let payer = if args.impostor {
            Clip::open(&clips.join(&args.impostor_clip))?
        } else {
            shopper.clone()
        };
        Ok(Self::Clips { shopper, payer })
    }
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
        "Challenge set: {} (server policy set to what the recorded clips contain: they cannot follow prompts)",
        names.join(", ")
    ));

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

    let vision = loading
        .join()
        .map_err(|_| anyhow!("the model loading thread panicked"))??;
    let device = FacePay::new(
        FacePayConfig {
            server: client,
            device_id: "demo-device-1".into(),
            state_dir: temp.path().join("device"),
            policy: LivenessPolicy::default(),
            enrolment_challenges: Some(challenge_set),
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
                "Enrolling the shopper from {} …",
                shopper.dir.display()
            ));
            let (summary, next) = enrol_with_clip(&capture, shopper)?;
            (summary, next, args.shopper.clone())
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
        "Enrolled from frames 1–{next_frame} of {enrolled_from} ({} embeddings, agreement ≥ {:.2}); device {} \
         registered",
        summary.embeddings, summary.min_agreement, registered.device_id
    ));

    let payer = match &mut source {
        Source::Clips { shopper, payer } => {
            let (clip, skip) = if args.impostor {
                (&*payer, 0)
            } else {
                (&*shopper, next_frame)
            };
            printer.say(&format!(
                "Paying with {} from frame {}{} …",
                clip.dir.display(),
                skip + 1,
                if args.impostor {
                    " (another person: the impostor)"
                } else {
                    ""
                }
            ));
            Payer::Clip { clip, skip }
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

/// The frames the payment is made with.
enum Payer<'a> {
    /// A clip, from frame `skip`.
    Clip { clip: &'a Clip, skip: usize },
    /// The webcam.
    Camera(&'a mut Webcam),
}

/// The payment: challenge, liveness on the clip or webcam (recorded into `record` when given), match, sign,
/// submit.
fn pay(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    payer: Payer<'_>,
    cancel_after: Option<u64>,
    printer: &Arc<GuidancePrinter>,
    record: Option<&Path>,
) -> Result<Receipt, FacePayError> {
    let session = start_payment(rt, device, client_token, printer)?;
    let mut recording = match (record, &payer) {
        (None, _) => None,
        (Some(dir), Payer::Clip { clip, .. }) => Some(Recording::start(dir, &session, clip.fps)?),
        (Some(dir), Payer::Camera(webcam)) => {
            Some(Recording::start(dir, &session, camera::fps(webcam))?)
        }
    };
    let pushed = match payer {
        Payer::Clip { clip, skip } => push_clip(
            &session,
            clip,
            skip,
            cancel_after,
            printer,
            recording.as_mut(),
        ),
        Payer::Camera(webcam) => {
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
