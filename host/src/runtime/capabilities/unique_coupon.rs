//! `unique-coupon` (since 0.2.0): a coupon code for this lead alone, from the pool or pattern
//! registered for the binding's product and plan, the same on every call. The code is given
//! (and committed) by the caller's [`LeadServices`](crate::runtime::LeadServices) at the
//! moment of the call; see `store::coupons` for why it does not wait for the event's commit.

use super::{require_declared, require_handle};
use crate::runtime::state::{InvocationState, UniqueCouponRefusal};
use crate::runtime::wit::{Capability, Coupon, HostError};

pub(super) fn unique_coupon(state: &mut InvocationState) -> wasmtime::Result<Result<Coupon, HostError>> {
    require_handle(state, "unique-coupon")?;
    if let Err(e) = require_declared(state, Capability::Coupons) {
        return Ok(Err(e));
    }
    if let Some(given) = &state.unique_coupon {
        return Ok(Ok(given.clone()));
    }
    let Some(services) = state.ctx.services.clone() else {
        return Ok(Err(HostError::Invalid("unique coupons are not available here".into())));
    };
    let started = std::time::Instant::now();
    let answer = services.0.unique_coupon();
    state.host_wait += started.elapsed();
    match answer {
        Ok(coupon) => {
            state.unique_coupon = Some(coupon.clone());
            Ok(Ok(coupon))
        }
        Err(UniqueCouponRefusal::UsedUp(why)) => Ok(Err(HostError::LimitReached(why))),
        Err(UniqueCouponRefusal::NoSource(why)) => Ok(Err(HostError::Invalid(why))),
        // The store failed: the invocation fails (nothing of it is kept) and is retried.
        Err(UniqueCouponRefusal::Failed(why)) => Err(wasmtime::format_err!("unique-coupon: {why}")),
    }
}
