//! `coupon`: the binding's coupon, when the binding names a product and plan and has one.

use super::require_handle;
use crate::runtime::state::InvocationState;
use crate::runtime::wit::{Capability, Coupon};

pub(super) fn coupon(state: &mut InvocationState) -> wasmtime::Result<Option<Coupon>> {
    require_handle(state, "coupon")?;
    // An undeclared capability reads as "no coupon" rather than an error: nothing leaks.
    if !state.declared.contains(&Capability::Coupons) {
        return Ok(None);
    }
    Ok(state.ctx.coupon.clone())
}
