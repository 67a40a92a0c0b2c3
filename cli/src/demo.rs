//! `facepay demo`: the whole flow on built-in defaults, in one process.
//!
//! Starts the checkout server in-process on loopback (SQLite in a temporary directory, TLS with a freshly
//! generated self-signed certificate that the client pins), creates a merchant, a shopper enrolment token and a
//! sample order; enrols the shopper from the first part of the `live-blink-7` clip (until its liveness session
//! passes), registers the device, and pays with the rest of the clip, printing each guidance change and the
//! receipt. `--impostor` pays with `live-turning` (another person) instead and shows the refusal, checking that
//! the server recorded no payment.
//!
//! Recorded clips cannot follow prompts, so the demo server's **challenge set** (a server policy, see
//! `docs/protocol.md`) is set to what the clips contain: blinks only (`--challenge-set` changes it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use facepay_core::checkout::client::{ClientConfig, MerchantClient, TrustRoots};
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::checkout::wire::CreateOrderRequest;
use facepay_core::flow::{FacePay, FacePayConfig, FlowError, Receipt};
use facepay_core::liveness::{LivenessPolicy, challenge_name, parse_challenges};
use facepay_core::template::MemoryKeyStore;
use facepay_core::vision::model::default_models_dir;
use facepay_core::vision::pipeline::Vision;
use facepay_server::{DatabaseTarget, RunningServer, Server, ServerConfig, TlsMode};

use crate::clip_frames::{Clip, clips_dir};
use crate::enroll::enrol_with_clip;
use crate::pay::{GuidancePrinter, Output, error_json, no_camera, print_receipt, push_clip};

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
    #[arg(long)]
    impostor: bool,
    /// The impostor's clip (another person than the shopper).
    #[arg(long, default_value = "live-turning")]
    impostor_clip: String,
    /// Pay with the webcam instead of the clip.
    #[arg(long)]
    camera: bool,
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

/// Runs `facepay demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.camera {
        return no_camera();
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
    let challenge_set = parse_challenges(&args.challenge_set)?;
    let out = Output::new(args.json);
    let printer = Arc::new(GuidancePrinter::new(out));

    // The models load on their own thread while the server starts.
    let loading = std::thread::spawn(Vision::load_default);
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
            models_dir: default_models_dir(),
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

    printer.say(&format!(
        "Enrolling the shopper from {} …",
        shopper.dir.display()
    ));
    let capture = device.start_enrolment(printer.clone())?;
    let (summary, next_frame) = enrol_with_clip(&capture, &shopper)?;
    drop(capture);
    let enrolled_s = started.elapsed().as_secs_f64();
    let registered = rt.block_on(device.register_device(&enrolment_token.enrollment_token))?;
    printer.say(&format!(
        "Enrolled from frames 1–{next_frame} of {} ({} embeddings, agreement ≥ {:.2}); device {} registered",
        args.shopper, summary.embeddings, summary.min_agreement, registered.device_id
    ));

    let (clip, skip) = if args.impostor {
        (&payer, 0)
    } else {
        (&shopper, next_frame)
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
    let result = pay(
        &rt,
        &device,
        &order.client_token,
        clip,
        skip,
        args.cancel_after,
        &printer,
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

/// The payment: challenge, liveness on the clip, match, sign, submit.
fn pay(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    clip: &Clip,
    skip: usize,
    cancel_after: Option<u64>,
    printer: &Arc<GuidancePrinter>,
) -> Result<Receipt, FlowError> {
    let session = rt.block_on(device.start_payment(client_token, printer.clone()))?;
    let names: Vec<&str> = session
        .challenges()
        .iter()
        .map(|c| challenge_name(*c))
        .collect();
    printer.say(&format!(
        "Challenges from the server's nonce: {}",
        names.join(", ")
    ));
    push_clip(&session, clip, skip, cancel_after)?;
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
    result: &Result<Receipt, FlowError>,
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
