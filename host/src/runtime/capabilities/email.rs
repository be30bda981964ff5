//! `send-email`: queue an email to the lead.

use super::{check_tag, new_id, record, require_declared, require_handle};
use crate::runtime::effects::{Effect, OutgoingEmail};
use crate::runtime::state::InvocationState;
use crate::runtime::wit::{Capability, Channel, HostError, MessageKind, MessageStatus, SentMessage};

pub(super) fn send_email(
    state: &mut InvocationState,
    subject: String,
    html: String,
    text: Option<String>,
    tag: String,
    kind: MessageKind,
) -> wasmtime::Result<Result<String, HostError>> {
    require_handle(state, "send-email")?;
    if let Err(e) = check(state, &subject, &html, text.as_deref(), &tag) {
        return Ok(Err(e));
    }
    let id = new_id();
    record(state, Effect::Email(OutgoingEmail { id: id.clone(), subject, html, text, tag: tag.clone(), kind }))?;
    // Later `messages()` calls in this invocation see it, queued.
    state.ctx.messages.push(SentMessage {
        id: id.clone(),
        tag,
        channel: Channel::Email,
        kind,
        status: MessageStatus::Queued,
        queued_at_ms: state.now_ms,
        clicked: false,
        opened: false,
    });
    Ok(Ok(id))
}

fn check(state: &InvocationState, subject: &str, html: &str, text: Option<&str>, tag: &str) -> Result<(), HostError> {
    require_declared(state, Capability::Email)?;
    check_tag(tag)?;
    if state.ctx.email_suppressed {
        return Err(HostError::Suppressed);
    }
    // The limits and their words are the SDK's, so a plugin that checks its config says the same.
    let problems = [
        ("subject", funnel_sdk::limits::subject_problem(subject)),
        ("html", funnel_sdk::limits::html_problem(html)),
        ("text", text.and_then(funnel_sdk::limits::text_problem)),
    ];
    match problems.into_iter().find_map(|(field, problem)| problem.map(|p| format!("{field} {p}"))) {
        Some(problem) => Err(HostError::Invalid(problem)),
        None => Ok(()),
    }
}
