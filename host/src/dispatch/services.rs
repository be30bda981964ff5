//! The store behind the two capabilities that reach it while a plugin runs
//! ([`LeadServices`]): `unique-coupon` gives the lead its code in a transaction of its own,
//! `choose-variant` reads the variant recorded earlier. The invocation runs on a blocking
//! thread; each call is handed to the async runtime as a task and waited for there, bounded
//! by [`STORE_CALL_DEADLINE`], so no async worker is ever blocked.

use std::time::Duration;

use crate::runtime::wit::Coupon;
use crate::runtime::{LeadServices, UniqueCouponRefusal};
use crate::store::Database;
use crate::store::coupons::AssignError;

/// The longest one call may wait for the store (the sandbox's wall-clock limit does not
/// count time spent in host calls, so this bounds it instead).
const STORE_CALL_DEADLINE: Duration = Duration::from_secs(10);

/// [`LeadServices`] for one lead's invocation.
pub(crate) struct StoreServices {
    pub store: Database,
    pub runtime: tokio::runtime::Handle,
    pub lead_id: String,
    pub producer_id: String,
    /// The binding's product and plan, when it names both.
    pub scope: Option<(String, String)>,
    pub now: i64,
}

impl StoreServices {
    /// Run `work` on the async runtime and wait for it on this (blocking) thread.
    fn wait<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(STORE_CALL_DEADLINE, work).await);
        });
        match rx.blocking_recv() {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(_)) => Err(format!("the store did not answer within {} s", STORE_CALL_DEADLINE.as_secs())),
            Err(_) => Err("the store call was abandoned".into()),
        }
    }
}

impl LeadServices for StoreServices {
    fn unique_coupon(&self) -> Result<Coupon, UniqueCouponRefusal> {
        let Some((product, plan)) = self.scope.clone() else {
            return Err(UniqueCouponRefusal::NoSource(
                "unique coupons need a binding whose scope names a product and a plan".into(),
            ));
        };
        let (store, lead, producer, now) =
            (self.store.clone(), self.lead_id.clone(), self.producer_id.clone(), self.now);
        let result = self
            .wait(async move { store.assign_unique_coupon(&lead, &producer, (&product, &plan), now).await })
            .map_err(UniqueCouponRefusal::Failed)?;
        match result {
            Ok(given) => Ok(Coupon { code: given.code, discount_percent: given.discount_percent }),
            Err(e @ AssignError::NoSource { .. }) => Err(UniqueCouponRefusal::NoSource(format!(
                "{e}: register one with POST /v1/coupons (\"codes\" or \"pattern\")"
            ))),
            Err(e @ (AssignError::UsedUp { .. } | AssignError::PatternExhausted(_))) => {
                Err(UniqueCouponRefusal::UsedUp(e.to_string()))
            }
            Err(AssignError::Store(e)) => Err(UniqueCouponRefusal::Failed(e.to_string())),
        }
    }

    fn recorded_variant(&self, step: &str) -> Result<Option<String>, String> {
        let (store, lead, step) = (self.store.clone(), self.lead_id.clone(), step.to_string());
        self.wait(async move { store.recorded_variant(&lead, &step).await })?.map_err(|e| e.to_string())
    }
}
