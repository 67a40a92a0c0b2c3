//! `facepay pay`: pays one order against a running `facepay-server` with a clip, for scripts — creates the order
//! with the merchant key, fetches the challenge, runs the liveness session on the clip, matches against the
//! template enrolled by `facepay enroll`, signs and submits.
//!
//! Also the pieces `demo` and `enroll` share: pushing a clip through a session while printing each guidance
//! change, and the receipt text.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::wire::CreateOrderRequest;
use facepay_core::flow::{
    FacePay, FlowError, FlowEvent, FlowListener, PaymentSession, PaymentStep, Receipt,
};
use facepay_core::liveness::{GuidanceState, challenge_name};

use crate::clip_frames::Clip;
use crate::enroll::{ServerArgs, open_device};

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
    let result = pay_with_clip(&rt, &device, &order.client_token, &clip, args.skip, printer);
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
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "outcome": "refused", "error": error_json(&e) })
                );
            }
            Err(e.into())
        }
    }
}

/// Opens a payment for `client_token`, pushes the clip's frames from `skip` until the face is verified, then pays.
pub fn pay_with_clip(
    rt: &tokio::runtime::Runtime,
    device: &FacePay,
    client_token: &str,
    clip: &Clip,
    skip: usize,
    printer: Arc<GuidancePrinter>,
) -> Result<Receipt, FlowError> {
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
    push_clip(&session, clip, skip, None)?;
    rt.block_on(session.pay())
}

/// Pushes clip frames from `skip` until the face is verified (or the session fails). `cancel_after` cancels the
/// session after that many frames, to show cancellation.
pub fn push_clip(
    session: &PaymentSession,
    clip: &Clip,
    skip: usize,
    cancel_after: Option<u64>,
) -> Result<(), FlowError> {
    for (n, frame) in clip.frames(skip).into_iter().enumerate() {
        if cancel_after.is_some_and(|c| n as u64 >= c) {
            session.cancel();
        }
        let frame = frame.map_err(|e| FlowError::Vision(format!("{e:#}")))?;
        if let PaymentStep::Verified { .. } = session.push_image(&frame.image, frame.t)? {
            return Ok(());
        }
    }
    Err(FlowError::LivenessFailed {
        reason: format!(
            "the clip {} ended before the liveness session decided",
            clip.dir.display()
        ),
    })
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
pub struct GuidancePrinter {
    out: Output,
    last: std::sync::Mutex<Option<GuidanceState>>,
}

impl GuidancePrinter {
    /// A printer writing to `out`.
    pub fn new(out: Output) -> Self {
        Self {
            out,
            last: std::sync::Mutex::new(None),
        }
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

/// `{"kind": …, "message": …}` plus the score and threshold of a non-match.
pub fn error_json(e: &FlowError) -> serde_json::Value {
    let mut v = serde_json::json!({ "kind": e.kind(), "message": e.to_string() });
    if let FlowError::NotMatched { score, threshold } = e {
        v["score"] = serde_json::json!(score);
        v["threshold"] = serde_json::json!(threshold);
    }
    if let FlowError::Declined { code, .. } = e {
        v["code"] = serde_json::json!(code);
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

/// Refuses `--camera`: this build has no webcam support.
pub fn no_camera() -> anyhow::Result<()> {
    bail!(
        "--camera needs webcam support (the `camera` feature of facepay-core), which this build does not include; \
         pay with a recorded clip instead (the default, or --clips DIR)"
    )
}
