//! The pipeline: store, runtime, dispatcher, scheduler and delivery wired together around one
//! clock — the path an event takes from its row to a sent message. `serve` runs it on the real
//! clock with loops; `simulate` and the tests step it on a virtual clock with
//! [`Pipeline::settle`]. (Named so as not to be confused with wasmtime's `Engine`, which
//! [`crate::runtime`] owns.)
//!
//! ## Layout
//! - [`loops`]: `serve`'s independent tasks (timers, dispatch, delivery, webhooks, periodic
//!   jobs).

pub mod loops;

use std::sync::Arc;

use crate::clock::Clock;
use crate::delivery::{Deliverer, Transport};
use crate::dispatch::Dispatcher;
use crate::dispatch::plugins::PluginRegistry;
use crate::runtime::Runtime;
use crate::scheduler::Scheduler;
use crate::store::{Database, StoreError};
use crate::webhooks::{SenderSettings, TargetPolicy, WebhookSender};

/// Everything that handles events, wired to one store and one clock.
pub struct Pipeline {
    pub store: Database,
    pub plugins: Arc<PluginRegistry>,
    pub clock: Arc<dyn Clock>,
    pub dispatcher: Dispatcher,
    pub scheduler: Scheduler,
    pub deliverer: Deliverer,
    /// Outgoing webhooks (not part of [`Pipeline::settle`]: they leave the machine).
    pub webhooks: Arc<WebhookSender>,
}

/// How the pipeline reaches the outside world.
pub struct PipelineParts {
    pub store: Database,
    pub runtime: Arc<Runtime>,
    pub clock: Arc<dyn Clock>,
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
    pub public_url: String,
    /// Send caps per minute: (all producers, one producer); `None` for no cap.
    pub rate_caps: (Option<u32>, Option<u32>),
}

impl Pipeline {
    pub fn new(parts: PipelineParts) -> Self {
        let plugins = Arc::new(PluginRegistry::new(parts.runtime));
        Pipeline {
            dispatcher: Dispatcher::new(parts.store.clone(), plugins.clone(), parts.clock.clone(), parts.public_url),
            scheduler: Scheduler::new(parts.store.clone(), parts.clock.clone()),
            deliverer: Deliverer::new(parts.store.clone(), parts.email, parts.sms, parts.clock.clone())
                .with_rate_caps(parts.rate_caps.0, parts.rate_caps.1),
            webhooks: Arc::new(WebhookSender::new(
                parts.store.clone(),
                parts.clock.clone(),
                TargetPolicy::default(),
                SenderSettings::default(),
            )),
            store: parts.store,
            plugins,
            clock: parts.clock,
        }
    }

    /// Deliver webhooks under `policy` and `settings` (the defaults refuse private targets).
    pub fn with_webhooks(self, policy: TargetPolicy, settings: SenderSettings) -> Self {
        let webhooks = Arc::new(WebhookSender::new(self.store.clone(), self.clock.clone(), policy, settings));
        Pipeline { webhooks, ..self }
    }

    /// Stop claiming work: the dispatcher gives back leads it has not started and stops each
    /// lead after its current event; delivery gives back messages it has not sent. For
    /// shutdown; steps running now finish what they hold.
    pub fn stop(&self) {
        self.dispatcher.stop();
        self.deliverer.stop();
        self.webhooks.stop();
    }

    /// Fire due timers, handle due events and deliver due messages until nothing is left to
    /// do at the current time: one deterministic sequential step, for tests and `simulate`
    /// (`serve` runs the same three steps as independent tasks, see [`loops`]).
    pub async fn settle(&self) -> Result<(), StoreError> {
        loop {
            let fired = self.scheduler.tick().await?.fired;
            let handled = self.dispatcher.drain().await?;
            let delivered = self.deliverer.deliver_due().await?;
            if fired == 0 && handled == 0 && delivered == 0 {
                return Ok(());
            }
        }
    }
}
