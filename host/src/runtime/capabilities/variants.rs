//! `choose-variant` (since 0.2.0): the lead's variant at an A/B split step, chosen by
//! [`crate::domain::split::choose`] (a stable hash of lead id and step) and recorded once per
//! lead and step with the event's other effects (timeline and stats by variant). A variant
//! recorded earlier wins while it is still in the list, so the answer never changes for a lead.

use super::{check_tag, record, require_handle};
use crate::domain::split::{self, Variant};
use crate::runtime::effects::Effect;
use crate::runtime::state::InvocationState;
use crate::runtime::wit::HostError;

pub(super) fn choose_variant(
    state: &mut InvocationState,
    step: String,
    variants: Vec<Variant>,
) -> wasmtime::Result<Result<String, HostError>> {
    require_handle(state, "choose-variant")?;
    if let Err(e) = check_tag(&step) {
        return Ok(Err(HostError::Invalid(format!("step: {}", invalid_text(e)))));
    }
    if let Some(problem) = split::variants_problem(&variants) {
        return Ok(Err(HostError::Invalid(problem)));
    }
    let listed = |name: &str| variants.iter().any(|v| v.name == name);
    // Chosen earlier in this call, or recorded by an earlier event.
    let here = state.effects.iter().find_map(|e| match e {
        Effect::Variant { step: s, variant } if *s == step => Some(variant.clone()),
        _ => None,
    });
    if let Some(name) = here.filter(|n| listed(n)) {
        return Ok(Ok(name));
    }
    let recorded = match state.ctx.services.clone() {
        Some(services) => {
            let started = std::time::Instant::now();
            let recorded = services.0.recorded_variant(&step);
            state.host_wait += started.elapsed();
            recorded.map_err(|e| wasmtime::format_err!("choose-variant: {e}"))?
        }
        None => None,
    };
    if let Some(name) = recorded.as_ref().filter(|n| listed(n)) {
        return Ok(Ok(name.clone()));
    }
    let Some(chosen) = split::choose(&state.ctx.lead_id, &step, &variants) else {
        return Ok(Err(HostError::Invalid("no variant can be chosen".into())));
    };
    let name = chosen.name.clone();
    // A variant recorded before that is no longer listed stays the lead's record (stats);
    // only a first choice is recorded.
    if recorded.is_none() {
        record(state, Effect::Variant { step, variant: name.clone() })?;
    }
    Ok(Ok(name))
}

fn invalid_text(e: HostError) -> String {
    match e {
        HostError::Invalid(text) => text,
        other => format!("{other:?}"),
    }
}
