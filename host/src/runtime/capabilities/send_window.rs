//! `send-window-opens` (since 0.2.0): when a recovery message sent at a given instant would
//! really go out, under the lead's send window (`domain::window`). The answer is the same rule
//! delivery enforces, so a plugin that counts from it (four-emails' 72 h and 5 h rules) agrees
//! with what the host does. Read-only: no capability to declare.

use super::require_handle;
use crate::runtime::state::InvocationState;

pub(super) fn opens(state: &mut InvocationState, at_ms: i64) -> wasmtime::Result<i64> {
    require_handle(state, "send-window-opens")?;
    Ok(state.ctx.send_window.as_ref().map_or(at_ms, |window| window.opens_at(at_ms)))
}
