//! Webhook delivery from the outbox: at least once, signed, retried with exponential backoff, and resumed after a
//! crash (the outbox row commits with the state change; a SIGKILL before or during a delivery leaves it due).
//!
//! The task polls `webhook_events` (and wakes early after each commit that added an event), claims each due event
//! for a lease (so two server instances on one PostgreSQL database do not send it at once), POSTs the event to the
//! merchant's endpoint with `FacePay-Signature` (one `v1` per valid secret, see
//! [`facepay_core::checkout::webhook`]), and records the outcome: any 2xx marks it delivered; anything else
//! (status, timeout, connection error) schedules attempt n+1 after `retry_base × 2^(n-1)` (capped at 1 hour) until
//! `max_attempts`, then gives up (the row keeps its last error). Receivers de-duplicate by the event id: a
//! delivery whose answer was lost (e.g. the server was killed) is sent again with the same id.

use std::sync::Arc;
use std::time::Duration;

use facepay_core::checkout::webhook::{Event, EventType, SIGNATURE_HEADER, signature_header};
use tokio::sync::Semaphore;

use crate::app::{App, millis, now_ms};
use crate::store::transaction::Step;
use crate::store::webhooks::DueEvent;
use crate::store::{Store, StoreError};
use crate::tokens;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Events claimed per poll.
const BATCH: i64 = 32;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 64;

/// Delivery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// How often the outbox is polled when nothing wakes the task.
    pub poll: Duration,
    /// Time limit of one delivery (connect + answer).
    pub timeout: Duration,
    /// Wait before the second attempt; doubles each time.
    pub retry_base: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
}

impl Default for WebhookPolicy {
    /// Poll every second, 10 s per delivery, retries after 10 s, 20 s, 40 s … (at most 1 h apart), 24 attempts
    /// (about 17 hours).
    fn default() -> Self {
        WebhookPolicy {
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(10),
            max_attempts: 24,
        }
    }
}

impl WebhookPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(factor).min(MAX_BACKOFF)
    }
}

/// The outbox step for an event about `data` (a new event id), for the same transaction as the state change.
pub fn event_step(merchant_id: &str, kind: EventType, data: &[u8], now_ms: i64) -> Step {
    Store::event_step(
        &tokens::new_id("evt_"),
        merchant_id,
        kind.as_str(),
        data,
        now_ms,
    )
}

/// The request body of an event: the envelope around the stored object (the same bytes on every attempt).
pub fn event_body(event: &DueEvent) -> Result<Vec<u8>, String> {
    let kind: EventType =
        serde_json::from_value(serde_json::Value::String(event.event_type.clone()))
            .map_err(|e| format!("unknown event type {}: {e}", event.event_type))?;
    let data = serde_json::from_slice(&event.data).map_err(|e| format!("stored data: {e}"))?;
    serde_json::to_vec(&Event {
        id: event.event_id.clone(),
        kind,
        created_at_ms: u64::try_from(event.created_at_ms).unwrap_or(0),
        merchant_id: event.merchant_id.clone(),
        data,
    })
    .map_err(|e| e.to_string())
}

/// The HTTP client for deliveries: rustls on ring with the system's trust store.
pub fn http_client(policy: &WebhookPolicy) -> Result<reqwest::Client, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_error = |e: String| StoreError::Query(sqlx::Error::Configuration(e.into()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| config_error(format!("system trust store: {e}")))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(policy.timeout)
        .timeout(policy.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("FacePay-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| config_error(format!("webhook HTTP client: {e}")))
}

/// The delivery loop; runs until the server stops. Deliveries run concurrently (at most [`IN_FLIGHT`]), so a
/// slow endpoint does not hold up the others.
pub async fn run(app: Arc<App>, http: reqwest::Client) {
    let policy = app.config.webhooks;
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        if let Err(e) = start_due(&app, &http, &policy, &slots).await {
            tracing::warn!(error = %e, "webhook outbox poll failed");
        }
        tokio::select! {
            () = app.webhook_wake.notified() => {},
            () = tokio::time::sleep(policy.poll) => {},
        }
    }
}

/// Claims every due event a free slot allows and starts its delivery in the background.
async fn start_due(
    app: &Arc<App>,
    http: &reqwest::Client,
    policy: &WebhookPolicy,
    slots: &Arc<Semaphore>,
) -> Result<(), StoreError> {
    let free = slots.available_permits();
    if free == 0 {
        return Ok(());
    }
    let now = now_ms();
    let due = app
        .store
        .due_events(now, i64::try_from(free).unwrap_or(BATCH).min(BATCH))
        .await?;
    // The lease outlasts the attempt's time limit, so a claimed event is never sent twice at once.
    let lease_until = now.saturating_add(millis(policy.timeout.saturating_mul(2)));
    for event in due {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            break;
        };
        if !app.store.claim_event(&event, lease_until).await? {
            continue;
        }
        let (app, http, policy) = (app.clone(), http.clone(), *policy);
        tokio::spawn(async move {
            if let Err(e) = attempt(&app, &http, &policy, &event).await {
                tracing::warn!(error = %e, "recording a webhook attempt failed");
            }
            drop(slot);
        });
    }
    Ok(())
}

/// One delivery attempt and its record.
async fn attempt(
    app: &App,
    http: &reqwest::Client,
    policy: &WebhookPolicy,
    event: &DueEvent,
) -> Result<(), StoreError> {
    let outcome = send(app, http, event).await;
    let attempt_no = u32::try_from(event.attempts + 1).unwrap_or(u32::MAX);
    match outcome {
        Ok(()) => {
            tracing::info!(
                event_id = event.event_id,
                attempt = attempt_no,
                "webhook delivered"
            );
            app.store
                .record_attempt(&event.event_id, Some(now_ms()), None, None)
                .await
        }
        Err(error) => {
            let next = (attempt_no < policy.max_attempts)
                .then(|| now_ms().saturating_add(millis(policy.backoff(attempt_no))));
            tracing::warn!(
                event_id = event.event_id,
                attempt = attempt_no,
                error,
                gave_up = next.is_none(),
                "webhook delivery failed"
            );
            app.store
                .record_attempt(&event.event_id, None, next, Some(error))
                .await
        }
    }
}

/// POSTs the signed event; `Err` with a short reason unless the endpoint answered 2xx.
async fn send(app: &App, http: &reqwest::Client, event: &DueEvent) -> Result<(), String> {
    let body = event_body(event)?;
    let now = now_ms();
    let secrets = app
        .store
        .webhook_secrets(&event.merchant_id, now)
        .await
        .map_err(|e| format!("reading the signing secrets: {e}"))?;
    if secrets.is_empty() {
        return Err("the endpoint has no valid signing secret".into());
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let timestamp = u64::try_from(now / 1000).unwrap_or(0);
    let response = http
        .post(&event.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            signature_header(&secrets, timestamp, &body),
        )
        .header("FacePay-Event-Id", event.event_id.as_str())
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("endpoint answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = WebhookPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_secs(10));
        assert_eq!(policy.backoff(2), Duration::from_secs(20));
        assert_eq!(policy.backoff(5), Duration::from_secs(160));
        assert_eq!(policy.backoff(30), MAX_BACKOFF);
    }
}
