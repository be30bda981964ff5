//! `log`: a line in the lead's timeline, capped per invocation.

use crate::runtime::state::{self, InvocationState};
use crate::runtime::wit::LogLevel;

pub(super) fn log(state: &mut InvocationState, level: LogLevel, text: String) -> wasmtime::Result<()> {
    state::log(state, level, &text);
    Ok(())
}
