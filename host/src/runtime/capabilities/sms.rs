//! `send-sms`: queue an SMS to the lead's phone.

use super::{check_tag, new_id, record, require_declared, require_handle};
use crate::runtime::effects::{Effect, OutgoingSms};
use crate::runtime::state::InvocationState;
use crate::runtime::wit::{Capability, Channel, HostError, MessageKind, MessageStatus, SentMessage};

pub(super) fn send_sms(
    state: &mut InvocationState,
    body: String,
    tag: String,
    kind: MessageKind,
) -> wasmtime::Result<Result<String, HostError>> {
    require_handle(state, "send-sms")?;
    if let Err(e) = check(state, &body, &tag) {
        return Ok(Err(e));
    }
    let id = new_id();
    record(state, Effect::Sms(OutgoingSms { id: id.clone(), body, tag: tag.clone(), kind }))?;
    state.ctx.messages.push(SentMessage {
        id: id.clone(),
        tag,
        channel: Channel::Sms,
        kind,
        status: MessageStatus::Queued,
        queued_at_ms: state.now_ms,
        clicked: false,
        opened: false,
    });
    Ok(Ok(id))
}

fn check(state: &InvocationState, body: &str, tag: &str) -> Result<(), HostError> {
    require_declared(state, Capability::Sms)?;
    check_tag(tag)?;
    if !state.ctx.has_phone {
        return Err(HostError::NoRecipient);
    }
    if state.ctx.phone_suppressed {
        return Err(HostError::Suppressed);
    }
    match funnel_sdk::limits::sms_problem(body) {
        Some(problem) => Err(HostError::Invalid(format!("body {problem}"))),
        None => Ok(()),
    }
}
