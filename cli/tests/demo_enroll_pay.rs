//! `facepay enroll` and `facepay pay` (the real binary) against a checkout server started in-process on loopback
//! with TLS (self-signed certificate, pinned with `--ca-cert`) and a blink / move-closer challenge set (what
//! `live-blink-7` can show): the shopper enrols from the clip and pays with the simulated scripted shopper
//! (`pay --scripted`, one payment row); the impostor's clip played straight — a recording that never saw the
//! prompts — is refused by the liveness check and adds no row.
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use std::path::{Path, PathBuf};
use std::process::Command;

use facepay_core::checkout::protocol::{Challenge, CloserOutline};
use facepay_qa::paths::default_shared_dir;
use facepay_server::{DatabaseTarget, Server, ServerConfig, TlsMode};

fn clip(name: &str) -> PathBuf {
    let shared = default_shared_dir();
    let dir = shared.join("data/clips").join(name);
    assert!(
        dir.is_dir(),
        "missing clip folder {}: set FACEPAY_SHARED to the shared data folder",
        dir.display()
    );
    dir
}

fn run(args: &[&str], extra: &[&Path]) -> (bool, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(args)
        .args(extra)
        .output()
        .expect("running facepay");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));
    (out.status.success(), json)
}

#[test]
fn enroll_then_pay_against_a_running_server() {
    let temp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cert = temp.path().join("cert.pem");
    let mut config = ServerConfig::new(DatabaseTarget::Sqlite(temp.path().join("db.sqlite")));
    config.tls = TlsMode::SelfSigned {
        cert_out: cert.clone(),
    };
    config.challenge_set = vec![
        Challenge::Blink,
        Challenge::MoveCloser(CloserOutline::default()),
    ];
    let server = rt.block_on(Server::start(config)).unwrap();
    let merchant = rt.block_on(server.create_merchant("Shop")).unwrap();
    let url = server.base_url();
    let state = temp.path().join("device");
    let common = [
        "--server",
        &url,
        "--merchant-key",
        &merchant.api_key,
        "--json",
    ];
    let paths =
        |clip: &Path| -> Vec<PathBuf> { vec![cert.clone(), state.clone(), clip.to_owned()] };

    let blink = clip("live-blink-7");
    let p = paths(&blink);
    let (ok, json) = run(
        &[&["enroll"], &common[..], &["--ca-cert"]].concat(),
        &[
            &p[0],
            Path::new("--state"),
            &p[1],
            Path::new("--clip"),
            &p[2],
        ],
    );
    assert!(ok, "{json}");
    assert_eq!(json["outcome"], "enrolled");
    assert!(state.join("template.fpt").is_file() && state.join("device-key.pk8").is_file());

    let (ok, json) = run(
        &[
            &["pay", "--scripted", "--order-id", "o-1"],
            &common[..],
            &["--ca-cert"],
        ]
        .concat(),
        &[
            &p[0],
            Path::new("--state"),
            &p[1],
            Path::new("--clip"),
            &p[2],
        ],
    );
    assert!(ok, "{json}");
    assert_eq!(json["outcome"], "paid");
    assert_eq!(json["receipt"]["order_id"], "o-1");
    assert_eq!(json["receipt"]["counter"], 1);
    assert_eq!(
        std::fs::read_to_string(state.join("counter"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(
        rt.block_on(server.store().table_counts()).unwrap().payments,
        1
    );

    let other = clip("live-turning");
    let p = paths(&other);
    let (ok, json) = run(
        &[&["pay", "--order-id", "o-2"], &common[..], &["--ca-cert"]].concat(),
        &[
            &p[0],
            Path::new("--state"),
            &p[1],
            Path::new("--clip"),
            &p[2],
        ],
    );
    assert!(!ok, "{json}");
    // live-turning played straight never answers the prompts: refused by the liveness check.
    assert_eq!(json["error"]["kind"], "liveness_failed", "{json}");
    assert_eq!(
        rt.block_on(server.store().table_counts()).unwrap().payments,
        1
    );
    rt.block_on(server.shutdown());
}
