//! `schedule`, `cancel`, `cancel-all`: durable timers of the lead.

use super::{check_tag, new_id, record, require_declared, require_handle};
use crate::runtime::effects::Effect;
use crate::runtime::state::InvocationState;
use crate::runtime::wit::{Capability, HostError};

/// A year: longer waits are surely a unit mistake.
const MAX_AFTER_MS: u64 = 366 * 24 * 3600 * 1000;

pub(super) fn schedule(
    state: &mut InvocationState,
    after_ms: u64,
    tag: String,
) -> wasmtime::Result<Result<String, HostError>> {
    require_handle(state, "schedule")?;
    if let Err(e) = require_declared(state, Capability::Timers).and_then(|()| check_tag(&tag)) {
        return Ok(Err(e));
    }
    if after_ms > MAX_AFTER_MS {
        return Ok(Err(HostError::Invalid(format!("after-ms must be at most {MAX_AFTER_MS} (a year)"))));
    }
    // Each pending timer is a row the scheduler scans and a wake-up: a lead has a bounded few.
    if state.timers_pending >= state.max_timers {
        return Ok(Err(HostError::LimitReached(format!(
            "a lead may have at most {} pending timers: cancel one first",
            state.max_timers
        ))));
    }
    let id = new_id();
    record(state, Effect::Schedule { id: id.clone(), after_ms, tag })?;
    state.timers_pending += 1;
    Ok(Ok(id))
}

pub(super) fn cancel(state: &mut InvocationState, id: String) -> wasmtime::Result<()> {
    require_handle(state, "cancel")?;
    record(state, Effect::Cancel { id })?;
    // An unknown id frees nothing in the store; counting it anyway errs by at most the
    // invocation's effect cap, and the next invocation starts from the store's count.
    state.timers_pending = state.timers_pending.saturating_sub(1);
    Ok(())
}

pub(super) fn cancel_all(state: &mut InvocationState) -> wasmtime::Result<()> {
    require_handle(state, "cancel-all")?;
    record(state, Effect::CancelAll)?;
    state.timers_pending = 0;
    Ok(())
}
