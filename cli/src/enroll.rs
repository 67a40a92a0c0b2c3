//! `facepay enroll`: enrols the shopper from a clip and registers this device with a running `facepay-server`,
//! for scripts. The state directory keeps the sealed template, its key, the device key and the counter.
//!
//! Also what `pay` shares: the server arguments and opening the device from its state directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use facepay_core::checkout::client::{ClientConfig, MerchantClient, TrustRoots};
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::enrolment::EnrolmentCapture;
use facepay_core::flow::{
    ConfigSetting, EnrolmentStep, EnrolmentSummary, FacePay, FacePayConfig, FacePayError,
    VisionFailure,
};
use facepay_core::liveness::{Challenge, LivenessPolicy, TimeoutReason, parse_challenges};
use facepay_core::template::FileKeyStore;

use crate::clip_frames::Clip;
use crate::pay::{GuidancePrinter, Output, failure};

/// File of the device's private key (PKCS#8) in the state directory.
const DEVICE_KEY_FILE: &str = "device-key.pk8";
/// File of the device id in the state directory.
const DEVICE_ID_FILE: &str = "device-id";

/// Where the server is, how to trust it, the merchant key and the device's state directory.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Base URL of the checkout server (e.g. https://127.0.0.1:8443).
    #[arg(long)]
    server: String,
    /// PEM certificate to pin (the server's `--self-signed` output); without it the system trust store is used.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// The merchant API key (creates the enrolment token and the order, as the merchant's backend would).
    #[arg(long)]
    merchant_key: String,
    /// State directory: template, template key, device key, counter.
    #[arg(long)]
    state: PathBuf,
}

impl ServerArgs {
    fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let trust = match &self.ca_cert {
            Some(path) => TrustRoots::PinnedCertPem(
                std::fs::read(path)
                    .with_context(|| format!("reading the certificate {}", path.display()))?,
            ),
            None => TrustRoots::System,
        };
        Ok(ClientConfig::new(self.server.clone(), trust))
    }

    /// The merchant backend's client.
    pub fn merchant(&self) -> anyhow::Result<MerchantClient> {
        Ok(MerchantClient::new(
            self.client_config()?,
            self.merchant_key.clone(),
        )?)
    }
}

/// Arguments of `facepay enroll`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Clip folder to enrol from (frames + clip.json).
    #[arg(long)]
    clip: PathBuf,
    /// The shopper's account id at the merchant.
    #[arg(long, default_value = "shopper-1")]
    account: String,
    /// This device's id (kept in the state directory; default: a random one on first enrolment).
    #[arg(long)]
    device_id: Option<String>,
    /// Challenges of the enrolment session (what the clip contains), e.g. `blink`.
    #[arg(long, default_value = "blink")]
    challenges: String,
    /// Print one JSON object on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Runs `facepay enroll`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let clip = Clip::open(&args.clip)?;
    let challenges = parse_challenges(&args.challenges)?;
    let out = Output::new(args.json);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&args.server.state)
        .with_context(|| format!("creating {}", args.server.state.display()))?;
    if let Some(id) = &args.device_id {
        std::fs::write(args.server.state.join(DEVICE_ID_FILE), id)?;
    }
    let device = open_device(&args.server, Some(challenges))?;
    let printer = Arc::new(GuidancePrinter::new(out));
    let capture = device.start_enrolment(printer.clone())?;
    let result = enrol_with_clip(&capture, &clip).and_then(|(summary, _)| {
        let token = rt.block_on(
            args.server
                .merchant()
                .map_err(|e| FacePayError::config(ConfigSetting::Tool, format!("{e:#}")))?
                .create_enrollment(&args.account),
        )?;
        let registered = rt.block_on(device.register_device(&token.enrollment_token))?;
        Ok((summary, registered))
    });
    match result {
        Ok((summary, registered)) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "outcome": "enrolled",
                        "device_id": registered.device_id,
                        "account_id": registered.account_id,
                        "enrolment": summary,
                        "state": args.server.state,
                    })
                );
            } else {
                println!(
                    "Enrolled: device {} registered for account {}; template sealed in {}",
                    registered.device_id,
                    registered.account_id,
                    args.server.state.display()
                );
            }
            Ok(())
        }
        Err(e) => Err(failure(args.json, "failed", e)),
    }
}

/// Pushes the clip's frames into the capture until the template is stored; returns the summary and the index of
/// the next unused frame.
pub fn enrol_with_clip(
    capture: &EnrolmentCapture,
    clip: &Clip,
) -> Result<(EnrolmentSummary, usize), FacePayError> {
    for frame in clip.frames(0) {
        let frame = frame.map_err(|e| FacePayError::Vision {
            kind: VisionFailure::Image,
            detail: format!("{e:#}"),
        })?;
        if let EnrolmentStep::Enrolled(summary) = capture.push_image(&frame.image, frame.t)? {
            return Ok((summary, frame.index + 1));
        }
    }
    Err(FacePayError::LivenessTimedOut {
        reason: TimeoutReason::InputEnded,
        detail: format!(
            "the clip {} ended before the enrolment session decided",
            clip.dir.display()
        ),
    })
}

/// Opens the device kept in the server arguments' state directory (creating its key and id on first use).
pub fn open_device(
    server: &ServerArgs,
    enrolment_challenges: Option<Vec<Challenge>>,
) -> anyhow::Result<FacePay> {
    let state = &server.state;
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    let signer = load_or_create_key(state)?;
    let id_path = state.join(DEVICE_ID_FILE);
    let device_id = match std::fs::read_to_string(&id_path) {
        Ok(id) => id.trim().to_owned(),
        Err(_) => {
            let id = format!("dev-{}", hex8(&signer.public_key()));
            std::fs::write(&id_path, &id)
                .with_context(|| format!("writing {}", id_path.display()))?;
            id
        }
    };
    let vision = facepay_qa::paths::load_default_vision().context("loading the vision models")?;
    let config = FacePayConfig {
        server: server.client_config()?,
        device_id,
        state_dir: state.clone(),
        policy: LivenessPolicy::default(),
        enrolment_challenges,
    };
    Ok(FacePay::new(
        config,
        vision,
        Arc::new(signer),
        Arc::new(FileKeyStore::new(state.join("keys"))),
    )?)
}

/// The device key in `dir`, generated and written (owner-only) on first use.
fn load_or_create_key(dir: &Path) -> anyhow::Result<SoftwareSigner> {
    let path = dir.join(DEVICE_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(SoftwareSigner::from_pkcs8(&bytes)
            .with_context(|| format!("{} is not a device key", path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = SoftwareSigner::generate()?;
            write_private(&path, &signer.to_pkcs8())?;
            Ok(signer)
        }
        Err(e) => bail!("reading {}: {e}", path.display()),
    }
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// The first 4 bytes of a SHA-256 of `bytes`, as hex.
fn hex8(bytes: &[u8]) -> String {
    facepay_core::checkout::protocol::sha256(bytes)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
