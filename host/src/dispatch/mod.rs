//! The dispatcher: one lead at a time, one transaction per event. A worker leases a lead with
//! pending events, handles them oldest first (loading the run, invoking the plugin in the
//! sandbox, committing state, timers, messages and list changes together), and gives the lead
//! back. A plugin failure commits nothing; the event is retried with backoff and, after
//! [`MAX_ATTEMPTS`], parked as failed in the lead's timeline.
//!
//! ## Layout
//! - [`plugins`]: which component serves a run.
//! - [`invocation`]: store snapshots to WIT values, effects to store writes.

pub mod invocation;
pub mod plugins;

use std::sync::Arc;

use crate::clock::Clock;
use crate::runtime::wit::Coupon;
use crate::store::dispatch::PendingEvent;
use crate::store::{Store, StoreError};
use plugins::PluginRegistry;

/// Attempts before an event is parked as failed.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long a worker holds a lead before another may take it over.
const LEASE_MS: i64 = 30_000;

/// A dispatch worker.
pub struct Dispatcher {
    store: Store,
    plugins: Arc<PluginRegistry>,
    clock: Arc<dyn Clock>,
    worker: String,
    public_url: String,
}

impl Dispatcher {
    pub fn new(store: Store, plugins: Arc<PluginRegistry>, clock: Arc<dyn Clock>, public_url: String) -> Self {
        Dispatcher { store, plugins, clock, worker: crate::store::new_id(), public_url }
    }

    /// Handle every event that is due now; returns how many were handled.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut handled = 0;
        while let Some(lead_id) = self.store.claim_lead(&self.worker, self.clock.now_ms(), LEASE_MS).await? {
            let result = self.handle_lead(&lead_id).await;
            self.store.release_lead(&lead_id, &self.worker).await?;
            handled += result?;
        }
        Ok(handled)
    }

    /// Handle the lead's due events in order; stop at the first one in backoff.
    async fn handle_lead(&self, lead_id: &str) -> Result<usize, StoreError> {
        let mut handled = 0;
        while let Some(event) = self.store.next_pending_event(lead_id).await? {
            if event.next_attempt_at > self.clock.now_ms() {
                break;
            }
            if !self.handle_event(&event).await? {
                break;
            }
            handled += 1;
        }
        Ok(handled)
    }

    /// Returns false when the lead should not be worked on further now.
    async fn handle_event(&self, event: &PendingEvent) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let Some(run) = self.store.run_snapshot(&event.lead_id).await? else {
            self.store.skip_event(event.seq, "no binding serves this lead").await?;
            return Ok(true);
        };
        if !run.active {
            self.store.skip_event(event.seq, "the run has ended").await?;
            return Ok(true);
        }
        let lead = self.store.lead_snapshot(&event.lead_id).await?;
        let coupon = self
            .store
            .coupon(&lead.producer_id, run.binding_product_id.as_deref(), run.binding_plan_id.as_deref())
            .await?
            .map(|c| Coupon { code: c.code, discount_percent: c.discount_percent });
        let plugin = match self.plugins.by_sha(&run.plugin_sha256, None) {
            Ok(plugin) => plugin,
            // Not built in and not loaded in this process yet: an upload, from the store.
            Err(_) => {
                let bytes = self.store.plugin_bytes(&run.plugin_sha256).await?;
                match self.plugins.by_sha(&run.plugin_sha256, bytes.as_deref()) {
                    Ok(plugin) => plugin,
                    Err(e) => return self.fail(event, &e.to_string(), now).await,
                }
            }
        };
        let invocation = invocation::invocation(&lead, &run, &event.event, now);
        let ctx = invocation::handle_context(&lead, coupon.clone());
        let result = tokio::task::spawn_blocking(move || plugin.handle(&invocation, ctx)).await;
        let outcome = match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => return self.fail(event, &e.to_string(), now).await,
            Err(join) => return self.fail(event, &format!("invocation thread failed: {join}"), now).await,
        };
        let writes =
            match invocation::writes(&lead, coupon.as_ref(), &self.public_url, outcome.effects, outcome.logs, now) {
                Ok(writes) => writes,
                Err(e) => return self.fail(event, &e.to_string(), now).await,
            };
        let committed = self.store.commit_invocation(&self.worker, event, &lead, outcome.state, &writes, now).await?;
        if committed {
            crate::metrics::INVOCATIONS_OK.inc();
        }
        Ok(committed)
    }

    /// Record a failure: retry with exponential backoff (1 s, 2 s, 4 s, …) or park it.
    async fn fail(&self, event: &PendingEvent, error: &str, now: i64) -> Result<bool, StoreError> {
        let attempt = event.attempts + 1;
        let retry_at = (attempt < MAX_ATTEMPTS).then(|| now + (1000i64 << (attempt - 1).clamp(0, 20)));
        tracing::warn!(lead = %event.lead_id, attempt, error, "plugin invocation failed");
        let counter =
            if retry_at.is_some() { &crate::metrics::INVOCATIONS_FAILED } else { &crate::metrics::INVOCATIONS_PARKED };
        counter.inc();
        self.store.fail_event(event, error, retry_at, now).await?;
        // A parked event no longer blocks the lead; one waiting for a retry does.
        Ok(retry_at.is_none())
    }
}
