//! Shared by the client and crash tests: the device's evidence, and a loopback HTTP/1.1 proxy that injects one
//! fault per request (reset, 503, lost answer) in front of a real server and logs every exchange.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use facepay_core::checkout::protocol::{Evidence, LivenessVerdict};
use facepay_core::checkout::wire::ChallengeResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The evidence of a successful selfie session for `challenge`.
pub fn live_evidence(challenge: &ChallengeResponse) -> Evidence {
    Evidence {
        liveness: LivenessVerdict::Live,
        challenges: challenge.challenges.clone(),
        antispoof_score: Some(0.96),
        match_score: 0.78,
        model_versions: vec!["detector@test".into(), "embedder@test".into()],
        started_at_ms: 1_767_225_600_000,
        finished_at_ms: 1_767_225_602_500,
    }
}

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and pass the answer back.
    Pass,
    /// Reset the connection (TCP RST) without forwarding.
    Reset,
    /// Answer `503` in the protocol's error shape without forwarding, then close.
    Unavailable,
    /// Forward it, swallow the server's answer, then reset the connection: the server acted, the client never
    /// hears about it.
    DropAnswer,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The raw request (head and body).
    pub request: Vec<u8>,
    /// The server's raw answer, when the request was forwarded.
    pub answer: Option<Vec<u8>>,
    /// What the proxy did.
    pub fault: Fault,
}

impl Exchange {
    /// The value of a request header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = String::from_utf8_lossy(&self.request[..head_len(&self.request)?]).into_owned();
        head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The request body.
    pub fn body(&self) -> &[u8] {
        &self.request[head_len(&self.request).unwrap_or(self.request.len())..]
    }

    /// The request line, e.g. `POST /v1/checkout/pay HTTP/1.1`.
    pub fn request_line(&self) -> String {
        String::from_utf8_lossy(&self.request)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The body of the server's answer.
    pub fn answer_body(&self) -> Option<&[u8]> {
        let answer = self.answer.as_deref()?;
        Some(&answer[head_len(answer)?..])
    }
}

/// A fault-injecting proxy on 127.0.0.1.
pub struct FaultyProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
    task: JoinHandle<()>,
}

impl FaultyProxy {
    /// Starts a proxy to `upstream` that applies `faults` to the first requests, in order, then passes all.
    pub async fn start(upstream: SocketAddr, faults: Vec<Fault>) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(VecDeque::from(faults)));
        let task = tokio::spawn({
            let log = log.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(proxy_connection(
                        client,
                        upstream,
                        faults.clone(),
                        log.clone(),
                    ));
                }
            }
        });
        FaultyProxy { url, log, task }
    }

    /// Every request seen so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    log: Arc<Mutex<Vec<Exchange>>>,
) {
    let mut from_client = Vec::new();
    let mut from_server = Vec::new();
    let mut server: Option<TcpStream> = None;
    while let Some(request) = read_message(&mut client, &mut from_client).await {
        let fault = faults.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
        let mut answer = None;
        if matches!(fault, Fault::Pass | Fault::DropAnswer) {
            if server.is_none() {
                server = TcpStream::connect(upstream).await.ok();
            }
            let Some(up) = server.as_mut() else { return };
            if up.write_all(&request).await.is_err() {
                return;
            }
            answer = read_message(up, &mut from_server).await;
        }
        log.lock().unwrap().push(Exchange {
            request,
            answer: answer.clone(),
            fault,
        });
        match fault {
            Fault::Pass => match answer {
                Some(answer) if client.write_all(&answer).await.is_ok() => continue,
                _ => return,
            },
            Fault::Unavailable => {
                let body =
                    r#"{"error":{"code":"unavailable","message":"injected by the test proxy"}}"#;
                let head = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = client.write_all(head.as_bytes()).await;
                let _ = client.write_all(body.as_bytes()).await;
                let _ = client.shutdown().await;
                return;
            }
            Fault::Reset | Fault::DropAnswer => {
                let _ = client.set_zero_linger();
                return;
            }
        }
    }
}

/// Reads one HTTP/1.1 message (head + `content-length` body) from `stream`, keeping extra bytes in `buf`.
/// `None` at end of stream or on a malformed message.
async fn read_message(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(head) = head_len(buf) {
            let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
            let body_len = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(Some(0), |v| v.trim().parse::<usize>().ok())?;
            if buf.len() >= head + body_len {
                let rest = buf.split_off(head + body_len);
                return Some(std::mem::replace(buf, rest));
            }
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Length of the head (through the blank line), if complete.
fn head_len(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}
