//! One HTTP call with retries: sends the same bytes (and the same idempotency key) on every attempt, maps every
//! answer to a typed result, and retries only transient faults.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::tls::{client_config, tls_failure};
use super::{CheckoutError, ClientConfig, RetryPolicy};
use crate::checkout::wire::{ErrorBody, IDEMPOTENCY_KEY_HEADER};

/// Longest slice of an unexpected body quoted in an error message.
const QUOTE_LEN: usize = 200;

/// A configured HTTP client bound to one server.
#[derive(Debug, Clone)]
pub(super) struct Transport {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
}

/// One request to send.
pub(super) struct Call<'a> {
    pub method: Method,
    /// Path relative to the base URL, without a leading slash (e.g. `v1/checkout/pay`).
    pub path: &'a str,
    pub bearer: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// JSON body bytes, sent unchanged on every attempt.
    pub body: Option<Vec<u8>>,
}

/// The outcome of one attempt.
enum Attempt<T> {
    Done(Result<T, CheckoutError>),
    Transient(CheckoutError),
}

impl Transport {
    /// Builds the HTTP client: rustls on ring with the configured trust roots, the timeouts and the retry policy.
    pub(super) fn new(config: &ClientConfig) -> Result<Self, CheckoutError> {
        let mut base = Url::parse(&config.base_url)
            .map_err(|e| CheckoutError::Config(format!("base URL {:?}: {e}", config.base_url)))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => {
                return Err(CheckoutError::Config(format!(
                    "base URL {base} is plain HTTP to a non-loopback host; use https"
                )));
            }
            other => {
                return Err(CheckoutError::Config(format!(
                    "base URL scheme {other:?} is not http(s)"
                )));
            }
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.retry.max_attempts == 0 {
            return Err(CheckoutError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(&config.trust)?)
            .connect_timeout(config.timeouts.connect)
            .timeout(config.timeouts.request)
            .build()
            .map_err(|e| CheckoutError::Config(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Transport {
            http,
            base,
            retry: config.retry.clone(),
        })
    }

    /// Sends `call`, retrying transient faults per the policy, and decodes a 2xx body as `T`.
    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
    ) -> Result<T, CheckoutError> {
        let url = self
            .base
            .join(call.path)
            .map_err(|e| CheckoutError::Config(format!("path {}: {e}", call.path)))?;
        let mut retry = 0;
        loop {
            match self.attempt(&url, &call).await {
                Attempt::Done(result) => return result,
                Attempt::Transient(error) if retry + 1 >= self.retry.max_attempts => {
                    return Err(error);
                }
                Attempt::Transient(_) => {
                    tokio::time::sleep(self.retry.backoff(retry)).await;
                    retry += 1;
                }
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, url: &Url, call: &Call<'_>) -> Attempt<T> {
        let mut request = self.http.request(call.method.clone(), url.clone());
        if let Some(token) = call.bearer {
            match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(value) => request = request.header(AUTHORIZATION, value),
                Err(_) => {
                    return Attempt::Done(Err(CheckoutError::Config(
                        "bearer token is not a valid header".into(),
                    )));
                }
            }
        }
        if let Some(key) = call.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return classify_transport(e),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return classify_transport(e),
        };
        classify_answer(status, &body)
    }
}

/// Maps a failure to get a (complete) answer: TLS failures and bad requests are final, the rest is transient.
fn classify_transport<T>(e: reqwest::Error) -> Attempt<T> {
    if let Some(tls) = tls_failure(&e) {
        Attempt::Done(Err(CheckoutError::Tls(tls)))
    } else if e.is_builder() {
        Attempt::Done(Err(CheckoutError::Config(error_chain(&e))))
    } else if e.is_timeout() {
        Attempt::Transient(CheckoutError::Timeout)
    } else {
        Attempt::Transient(CheckoutError::Network(error_chain(&e)))
    }
}

/// Maps an HTTP answer: 2xx decodes as `T`; an error in the protocol's shape becomes `Rejected` (4xx) or
/// `Server` (5xx); 5xx and transient codes are retried; anything else is a protocol violation.
fn classify_answer<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Attempt<T> {
    if status.is_success() {
        return Attempt::Done(serde_json::from_slice(body).map_err(|e| {
            CheckoutError::Protocol(format!(
                "undecodable {status} answer ({e}): {}",
                quote(body)
            ))
        }));
    }
    let shaped = serde_json::from_slice::<ErrorBody>(body).ok();
    if status.is_server_error() {
        let (code, message) = match shaped {
            Some(b) => (Some(b.error.code), b.error.message),
            None => (None, quote(body)),
        };
        return Attempt::Transient(CheckoutError::Server {
            status: status.as_u16(),
            code,
            message,
        });
    }
    match shaped {
        Some(b) if status.is_client_error() => {
            let error = CheckoutError::Rejected {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            };
            if b.error.code.is_transient() {
                Attempt::Transient(error)
            } else {
                Attempt::Done(Err(error))
            }
        }
        _ => Attempt::Done(Err(CheckoutError::Protocol(format!(
            "unexpected {status} answer without the error shape: {}",
            quote(body)
        )))),
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error and its sources, joined with `": "` (reqwest's own message alone says little).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The start of a body as lossy UTF-8, for error messages.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTE_LEN)]);
    if body.len() > QUOTE_LEN {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::wire::{ErrorCode, Health};

    fn answer(status: u16, body: &str) -> Attempt<Health> {
        classify_answer(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn success_decodes_or_is_a_protocol_error() {
        let ok = answer(200, r#"{"status":"ok","backend":"sqlite","protocol":"v1"}"#);
        assert!(matches!(ok, Attempt::Done(Ok(Health { ref backend, .. })) if backend == "sqlite"));
        assert!(matches!(
            answer(200, "{}"),
            Attempt::Done(Err(CheckoutError::Protocol(_)))
        ));
    }

    #[test]
    fn rejections_are_final_except_in_progress() {
        let body = r#"{"error":{"code":"nonce_reused","message":"used"}}"#;
        match answer(409, body) {
            Attempt::Done(Err(CheckoutError::Rejected {
                status: 409,
                code: ErrorCode::NonceReused,
                message,
            })) => {
                assert_eq!(message, "used")
            }
            _ => panic!("nonce_reused must be a final rejection"),
        }
        let body = r#"{"error":{"code":"idempotency_in_progress","message":"busy"}}"#;
        assert!(matches!(
            answer(409, body),
            Attempt::Transient(CheckoutError::Rejected { .. })
        ));
    }

    #[test]
    fn server_errors_are_transient_with_or_without_the_shape() {
        let body = r#"{"error":{"code":"unavailable","message":"shutting down"}}"#;
        assert!(matches!(
            answer(503, body),
            Attempt::Transient(CheckoutError::Server {
                status: 503,
                code: Some(ErrorCode::Unavailable),
                ..
            })
        ));
        assert!(matches!(
            answer(502, "<html>bad gateway</html>"),
            Attempt::Transient(CheckoutError::Server {
                status: 502,
                code: None,
                ..
            })
        ));
    }

    #[test]
    fn unshaped_client_errors_and_odd_statuses_are_protocol_errors() {
        assert!(matches!(
            answer(400, "plain text"),
            Attempt::Done(Err(CheckoutError::Protocol(_)))
        ));
        assert!(matches!(
            answer(302, ""),
            Attempt::Done(Err(CheckoutError::Protocol(_)))
        ));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let config = |url: &str| ClientConfig::new(url, super::super::TrustRoots::System);
        assert!(Transport::new(&config("http://127.0.0.1:8080")).is_ok());
        assert!(Transport::new(&config("http://localhost:8080/base")).is_ok());
        assert!(matches!(
            Transport::new(&config("http://example.com")),
            Err(CheckoutError::Config(_))
        ));
        assert!(matches!(
            Transport::new(&config("ftp://127.0.0.1")),
            Err(CheckoutError::Config(_))
        ));
        assert!(matches!(
            Transport::new(&config("not a url")),
            Err(CheckoutError::Config(_))
        ));
    }

    #[test]
    fn base_path_is_kept() {
        let t = Transport::new(&ClientConfig::new(
            "https://pay.example/facepay",
            super::super::TrustRoots::System,
        ))
        .unwrap();
        assert_eq!(
            t.base.join("v1/orders").unwrap().as_str(),
            "https://pay.example/facepay/v1/orders"
        );
    }
}
