//! `add-to-list`, `remove-from-list`, `lists`: the producer's contact lists, for this lead.

use super::{record, require_declared, require_handle};
use crate::runtime::effects::Effect;
use crate::runtime::state::InvocationState;
use crate::runtime::wit::{Capability, HostError};

fn check_name(state: &InvocationState, name: &str) -> Result<(), HostError> {
    require_declared(state, Capability::Lists)?;
    if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(HostError::Invalid("a list name is 1 to 100 printable bytes".into()));
    }
    Ok(())
}

pub(super) fn add(state: &mut InvocationState, name: String) -> wasmtime::Result<Result<(), HostError>> {
    require_handle(state, "add-to-list")?;
    if let Err(e) = check_name(state, &name) {
        return Ok(Err(e));
    }
    state.lists.insert(name.clone());
    record(state, Effect::ListAdd { name })?;
    Ok(Ok(()))
}

pub(super) fn remove(state: &mut InvocationState, name: String) -> wasmtime::Result<Result<(), HostError>> {
    require_handle(state, "remove-from-list")?;
    if let Err(e) = check_name(state, &name) {
        return Ok(Err(e));
    }
    state.lists.remove(&name);
    record(state, Effect::ListRemove { name })?;
    Ok(Ok(()))
}

pub(super) fn current(state: &mut InvocationState) -> wasmtime::Result<Vec<String>> {
    require_handle(state, "lists")?;
    Ok(state.lists.iter().cloned().collect())
}
