//! `messages`: what this lead was sent so far, with click and open flags.

use super::require_handle;
use crate::runtime::state::InvocationState;
use crate::runtime::wit::SentMessage;

pub(super) fn messages(state: &mut InvocationState) -> wasmtime::Result<Vec<SentMessage>> {
    require_handle(state, "messages")?;
    Ok(state.ctx.messages.clone())
}
