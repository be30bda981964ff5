//! The webhook worker: claims due deliveries under a lease and POSTs each to its endpoint,
//! signed, on tasks of their own — at most [`SenderSettings::concurrency`] at once and at most
//! one per endpoint, each bounded by a connect deadline and a whole-request deadline, reading
//! at most [`SenderSettings::max_response_bytes`] of an answer. A receiver that hangs holds one
//! slot until its deadline; the others keep going (and the engine's own loops never wait on
//! this one). A 2xx answer is delivered; anything else is retried with exponential backoff and
//! jitter until [`SenderSettings::retry_for`] after the event, then marked failed.
//!
//! Each POST carries `Funnel-Signature: t=<unix>,v1=<hex hmac-sha256(secret, t + "." + body)>`
//! (the scheme the platform signs its events to us with, made by [`crate::api::auth::sign`]),
//! `Funnel-Delivery` (the delivery's id, the same on every retry: receivers dedupe on it) and
//! `Funnel-Event` (the event type).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::target::{self, GuardedResolver, TargetPolicy};
use crate::clock::Clock;
use crate::store::webhooks::{Attempt, ClaimedDelivery, Next};
use crate::store::{Database, StoreError};

/// How deliveries are made and retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderSettings {
    /// Opening the connection (and the TLS handshake).
    pub connect: Duration,
    /// The whole request, from connecting to the last byte of the answer read.
    pub request: Duration,
    /// Requests in flight at once (each to a different endpoint).
    pub concurrency: usize,
    /// The most of an answer read (the rest is dropped with the connection).
    pub max_response_bytes: usize,
    /// The first retry's delay; each next one doubles, up to `backoff_cap`.
    pub backoff: Duration,
    pub backoff_cap: Duration,
    /// How long after the event deliveries are retried before they are marked failed.
    pub retry_for: Duration,
    /// How long a claim holds a delivery before another worker may take it over; longer than
    /// `connect + request`, so a live worker's claim never runs out mid-request.
    pub lease: Duration,
}

impl Default for SenderSettings {
    fn default() -> Self {
        SenderSettings {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
            concurrency: 16,
            max_response_bytes: 64 * 1024,
            backoff: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(3600),
            retry_for: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
        }
    }
}

impl SenderSettings {
    /// The delay before the next try after `attempts` failed ones (1 or more), before jitter:
    /// 30 s, 1 min, 2 min, … capped at an hour with the defaults.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        let base = i64::try_from(self.backoff.as_millis()).unwrap_or(i64::MAX);
        let cap = i64::try_from(self.backoff_cap.as_millis()).unwrap_or(i64::MAX);
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
        base.saturating_mul(1i64.checked_shl(doublings).unwrap_or(i64::MAX)).min(cap)
    }
}

/// Removes an endpoint from the busy set and wakes the loop when its request ends (or its
/// task panics).
struct InFlight {
    busy: Arc<Mutex<HashSet<String>>>,
    webhook: String,
    wake: Arc<Notify>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.remove(&self.webhook);
        }
        self.wake.notify_one();
    }
}

/// Claims due deliveries and POSTs them.
pub struct WebhookSender {
    store: Database,
    clock: Arc<dyn Clock>,
    policy: TargetPolicy,
    settings: SenderSettings,
    /// `Err` (with why) if it could not be built: every attempt then fails with that reason.
    client: Result<reqwest::Client, String>,
    slots: Arc<Semaphore>,
    /// The endpoints with a request in flight from this worker.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Notified when a request ends: a slot is free, and its endpoint may have more due.
    wake: Arc<Notify>,
    stopping: AtomicBool,
}

impl WebhookSender {
    pub fn new(store: Database, clock: Arc<dyn Clock>, policy: TargetPolicy, settings: SenderSettings) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(policy)))
            // A proxy would be what resolves and connects, past the guard.
            .no_proxy()
            // A redirect could lead anywhere; it is an answer other than 2xx.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect)
            .timeout(settings.request)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("funnel-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"));
        if let Err(e) = &client {
            tracing::error!(error = %e, "webhooks will not be delivered");
        }
        WebhookSender {
            store,
            clock,
            policy,
            settings,
            client,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            busy: Arc::new(Mutex::new(HashSet::new())),
            wake: Arc::new(Notify::new()),
            stopping: AtomicBool::new(false),
        }
    }

    /// What the loop should wait on besides its tick (a request ended).
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claim nothing more (for shutdown); requests in flight finish.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn busy_endpoints(&self) -> Vec<String> {
        self.busy.lock().map(|b| b.iter().cloned().collect()).unwrap_or_default()
    }

    /// Claim what is due now, as many as there are free slots (none for an endpoint already
    /// being called), and start a request for each; returns how many were started. Does not
    /// wait for them.
    pub async fn pump(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut started = 0;
        while !self.stopping.load(Ordering::SeqCst) {
            let free = self.slots.available_permits();
            if free == 0 {
                break;
            }
            let now = self.clock.now_ms();
            let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
            let busy = self.busy_endpoints();
            let claimed = self.store.claim_webhook_deliveries(now, lease, free as i64, &busy).await?;
            if claimed.is_empty() {
                break;
            }
            for delivery in claimed {
                let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                    // Cannot happen (claimed no more than the free slots); give it back.
                    self.store.release_webhook_delivery(&delivery, self.clock.now_ms()).await?;
                    continue;
                };
                if let Ok(mut busy) = self.busy.lock() {
                    busy.insert(delivery.webhook_id.clone());
                }
                let guard =
                    InFlight { busy: self.busy.clone(), webhook: delivery.webhook_id.clone(), wake: self.wake.clone() };
                let sender = self.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let _guard = guard;
                    if let Err(e) = sender.deliver(&delivery).await {
                        tracing::error!(delivery = %delivery.id, error = %e, "recording a webhook attempt failed; the lease will return it");
                    }
                });
                started += 1;
            }
        }
        Ok(started)
    }

    /// Wait until no request is in flight (or `within` passes); whether it became idle.
    pub async fn wait_idle(&self, within: Duration) -> bool {
        let all = u32::try_from(self.settings.concurrency.max(1)).unwrap_or(u32::MAX);
        matches!(tokio::time::timeout(within, self.slots.acquire_many(all)).await, Ok(Ok(_)))
    }

    /// Deliver everything due at the clock's time and wait for the answers; returns how many
    /// attempts were made. For tests (`serve` runs [`pump`](Self::pump) in a loop instead).
    pub async fn deliver_due(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut attempts = 0;
        loop {
            let started = self.pump().await?;
            self.wait_idle(self.settings.connect + self.settings.request + Duration::from_secs(5)).await;
            if started == 0 {
                return Ok(attempts);
            }
            attempts += started;
        }
    }

    /// One attempt at `delivery`, recorded with what follows it.
    async fn deliver(&self, delivery: &ClaimedDelivery) -> Result<(), StoreError> {
        let started = Instant::now();
        let at = self.clock.now_ms();
        let (status_code, error) = match self.post(delivery, at).await {
            Ok((code, None)) => (Some(code), None),
            Ok((code, Some(body))) => (Some(code), Some(body)),
            Err(error) => (None, Some(error)),
        };
        let ok = status_code.is_some_and(|c| (200..300).contains(&c));
        let attempt = Attempt {
            at,
            status_code,
            error: if ok { None } else { error.or_else(|| Some("no 2xx answer".into())) },
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let now = self.clock.now_ms();
        let next = if ok {
            Next::Delivered
        } else {
            let delay = jitter(self.settings.backoff_ms(delivery.attempts + 1));
            let give_up_at = delivery
                .created_at
                .saturating_add(i64::try_from(self.settings.retry_for.as_millis()).unwrap_or(i64::MAX));
            let retry_at = now.saturating_add(delay);
            if retry_at > give_up_at { Next::Failed } else { Next::Retry { at: retry_at } }
        };
        match next {
            Next::Delivered => crate::metrics::WEBHOOKS_DELIVERED.inc(),
            Next::Retry { .. } => crate::metrics::WEBHOOKS_RETRIED.inc(),
            Next::Failed => crate::metrics::WEBHOOKS_FAILED.inc(),
        }
        if !self.store.finish_webhook_delivery(delivery, &attempt, next).await? {
            tracing::warn!(delivery = %delivery.id, "webhook claim taken over while sending; outcome not recorded");
        }
        Ok(())
    }

    /// POST the delivery; the answer's status and, when it is not 2xx, the start of its body.
    async fn post(&self, delivery: &ClaimedDelivery, now_ms: i64) -> Result<(u16, Option<String>), String> {
        let url = target::parse(&delivery.url).map_err(|e| format!("url {e}"))?;
        // A name is checked by the client's resolver; an address is checked here.
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.policy.check_ip(&ip.to_string(), ip.into()),
            Some(url::Host::Ipv6(ip)) => self.policy.check_ip(&ip.to_string(), ip.into()),
            _ => Ok(()),
        }
        .map_err(|e| e.to_string())?;
        let t = now_ms.div_euclid(1000);
        let signature = crate::api::auth::sign(&delivery.secret, t, delivery.payload.as_bytes());
        let client = self.client.as_ref().map_err(String::clone)?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("funnel-signature", signature)
            .header("funnel-delivery", &delivery.id)
            .header("funnel-event", delivery.event.as_str())
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(describe)?;
        let code = response.status().as_u16();
        let body = read_bounded(response, self.settings.max_response_bytes).await;
        if (200..300).contains(&code) {
            return Ok((code, None));
        }
        let mut start: String = String::from_utf8_lossy(&body).chars().filter(|c| !c.is_control()).take(200).collect();
        if start.is_empty() {
            start = format!("HTTP {code}");
        }
        Ok((code, Some(start)))
    }
}

/// The start of a response's body, at most `max` bytes (the rest is never read); empty if the
/// body fails or stalls (the request's deadline covers it).
async fn read_bounded(mut response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]),
            _ => break,
        }
    }
    body
}

/// A network failure in words a producer can act on.
fn describe(e: reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    // The innermost cause says why (connection refused, the resolver's refusal, …).
    let mut source = e.source();
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(last) = last {
        text.push_str(": ");
        text.push_str(&last);
    }
    text.chars().take(300).collect()
}

/// `ms` ± 20 %, so endpoints that failed together do not retry together.
fn jitter(ms: i64) -> i64 {
    use rand::Rng;
    let spread = ms / 5;
    if spread <= 0 {
        return ms;
    }
    ms + rand::rng().random_range(-spread..=spread)
}

#[cfg(test)]
mod tests {
    use super::SenderSettings;

    #[test]
    fn backoff_doubles_from_30_s_to_an_hour() {
        let s = SenderSettings::default();
        let delays: Vec<i64> = (1..=9).map(|n| s.backoff_ms(n) / 1000).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(s.backoff_ms(1_000_000), 3_600_000);
    }
}
