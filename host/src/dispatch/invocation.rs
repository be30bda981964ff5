//! Translation between the store's view of a lead and the WIT contract's: the invocation a
//! plugin receives, and the writes its effects become (templates rendered, links tracked).

use crate::delivery::template::{self, Part, TemplateVars};
use crate::domain::timeline::LogLevel;
use crate::domain::{self, LeadEvent, SendWindow, TimelineNote};
use crate::runtime::wit::{self, Channel, Coupon, MessageKind, MessageStatus, SentMessage};
use crate::runtime::{Effect, HandleContext, LogLine};
use crate::store::commit::{NewOutbox, Write};
use crate::store::new_token;
use crate::store::snapshots::{LeadSnapshot, MessageSnapshot, RunSnapshot};

/// The first word of the lead's name.
fn first_name(lead: &LeadSnapshot) -> Option<&str> {
    lead.name.as_deref().and_then(|n| n.split_whitespace().next())
}

/// The WIT lead.
pub(crate) fn wit_lead(lead: &LeadSnapshot) -> wit::Lead {
    wit::Lead {
        id: lead.id.clone(),
        email: lead.email.clone(),
        name: lead.name.clone(),
        first_name: first_name(lead).map(str::to_string),
        phone: lead.phone.clone(),
        product_id: lead.product_id.clone(),
        plan_id: lead.plan_id.clone(),
        price: match (lead.price_cents, &lead.currency) {
            (Some(amount_cents), Some(currency)) => Some(wit::Money { amount_cents, currency: currency.clone() }),
            _ => None,
        },
        captured_at_ms: lead.captured_at,
        purchased: lead.purchased,
        suppressed: lead.email_suppressed,
    }
}

/// The WIT event (with the lateness of a timer).
pub(crate) fn wit_event(event: &LeadEvent, now: i64) -> wit::Event {
    match event {
        LeadEvent::Captured => wit::Event::Captured,
        LeadEvent::Updated => wit::Event::Updated,
        LeadEvent::Purchased { price } => wit::Event::Purchased(
            price.as_ref().map(|p| wit::Money { amount_cents: p.amount_cents, currency: p.currency.clone() }),
        ),
        LeadEvent::Refunded => wit::Event::Refunded,
        LeadEvent::Clicked { message_id } => wit::Event::Clicked(message_id.clone()),
        LeadEvent::Opened { message_id } => wit::Event::Opened(message_id.clone()),
        LeadEvent::Unsubscribed => wit::Event::Unsubscribed,
        LeadEvent::Bounced { message_id } => wit::Event::Bounced(message_id.clone()),
        LeadEvent::Timer { timer_id, tag, due_at } => wit::Event::Timer(wit::TimerFired {
            id: timer_id.clone(),
            tag: tag.clone(),
            late_ms: u64::try_from(now - due_at).unwrap_or(0),
        }),
    }
}

fn sent_message(m: &MessageSnapshot) -> SentMessage {
    SentMessage {
        id: m.id.clone(),
        tag: m.tag.clone(),
        channel: match m.channel {
            domain::Channel::Email => Channel::Email,
            domain::Channel::Sms => Channel::Sms,
        },
        kind: wit_kind(m.kind),
        // A message being sent is still queued as far as the plugin knows.
        status: match m.status {
            domain::MessageStatus::Queued | domain::MessageStatus::Sending => MessageStatus::Queued,
            domain::MessageStatus::Sent => MessageStatus::Sent,
            domain::MessageStatus::Dropped => MessageStatus::Dropped,
            domain::MessageStatus::Bounced => MessageStatus::Bounced,
            domain::MessageStatus::Failed => MessageStatus::Failed,
        },
        queued_at_ms: m.queued_at,
        clicked: m.clicked,
        opened: m.opened,
    }
}

/// The read-only context the capabilities answer from.
pub(crate) fn handle_context(
    lead: &LeadSnapshot,
    coupon: Option<Coupon>,
    send_window: Option<SendWindow>,
) -> HandleContext {
    HandleContext {
        lead_id: lead.id.clone(),
        lists: lead.lists.clone(),
        coupon,
        messages: lead.messages.iter().map(sent_message).collect(),
        has_phone: lead.phone.as_deref().is_some_and(|p| !p.trim().is_empty()),
        email_suppressed: lead.email_suppressed,
        phone_suppressed: lead.phone_suppressed,
        pending_timers: usize::try_from(lead.pending_timers).unwrap_or(0),
        send_window,
        services: None,
    }
}

/// The invocation record.
pub(crate) fn invocation(lead: &LeadSnapshot, run: &RunSnapshot, event: &LeadEvent, now: i64) -> wit::Invocation {
    wit::Invocation {
        lead: wit_lead(lead),
        event: wit_event(event, now),
        now_ms: now,
        config_json: run.config_json.clone(),
        state: run.state.clone(),
    }
}

fn log_level(level: wit::LogLevel) -> LogLevel {
    match level {
        wit::LogLevel::Debug => LogLevel::Debug,
        wit::LogLevel::Info => LogLevel::Info,
        wit::LogLevel::Warn => LogLevel::Warn,
        wit::LogLevel::Error => LogLevel::Error,
    }
}

fn wit_kind(kind: domain::MessageKind) -> MessageKind {
    match kind {
        domain::MessageKind::Recovery => MessageKind::Recovery,
        domain::MessageKind::Transactional => MessageKind::Transactional,
    }
}

fn domain_kind(kind: MessageKind) -> domain::MessageKind {
    match kind {
        MessageKind::Recovery => domain::MessageKind::Recovery,
        MessageKind::Transactional => domain::MessageKind::Transactional,
    }
}

/// Turn a successful invocation's effects, refused calls and logs into store writes,
/// rendering messages with the binding's coupon. Recovery messages carry the lead's send
/// window (transactional ones go out at once: a receipt or a thank-you answers what the buyer
/// just did).
pub(crate) fn writes(
    lead: &LeadSnapshot,
    (coupon, send_window): (Option<&Coupon>, Option<&SendWindow>),
    public_url: &str,
    effects: Vec<Effect>,
    refusals: Vec<String>,
    logs: Vec<LogLine>,
    now: i64,
) -> Result<Vec<Write>, template::TemplateError> {
    let base = public_url.trim_end_matches('/');
    let mut writes = Vec::with_capacity(effects.len() + refusals.len() + logs.len());
    // A refused call is the plugin's mistake: said in the timeline as such, not as a log line.
    writes.extend(refusals.into_iter().map(|reason| Write::Timeline(TimelineNote::Refused { reason })));
    for line in logs {
        writes.push(Write::Timeline(TimelineNote::Log {
            level: log_level(line.level),
            source: line.source.to_string(),
            text: line.text,
        }));
    }
    // The lead's values are the same for every message; only the link tokens are per message.
    let lead_vars = TemplateVars {
        name: lead.name.clone().unwrap_or_default(),
        first_name: first_name(lead).unwrap_or_default().to_string(),
        product: lead.product_id.clone().unwrap_or_default(),
        coupon_code: coupon.map(|c| c.code.clone()).unwrap_or_default(),
        ..TemplateVars::default()
    };
    let window_for = |kind: MessageKind| match kind {
        MessageKind::Recovery => send_window.cloned(),
        MessageKind::Transactional => None,
    };
    for effect in effects {
        let link_token = new_token();
        let unsubscribe_token = new_token();
        let vars = TemplateVars {
            checkout_url: format!("{base}/r/{link_token}"),
            unsubscribe_url: format!("{base}/u/{unsubscribe_token}"),
            ..lead_vars.clone()
        };
        let write = match effect {
            Effect::Email(email) => {
                let html = template::render(Part::Html, &email.html, &vars)?;
                let text = match &email.text {
                    Some(text) => template::render(Part::Text, text, &vars)?,
                    None => template::html_to_text(&html),
                };
                let carries_coupon = template::uses_coupon(&email.subject)
                    || template::uses_coupon(&email.html)
                    || email.text.as_deref().is_some_and(template::uses_coupon);
                Write::Outbox(Box::new(NewOutbox {
                    id: email.id,
                    channel: domain::Channel::Email,
                    kind: domain_kind(email.kind),
                    tag: email.tag,
                    recipient: lead.email.clone(),
                    subject: Some(template::render(Part::Subject, &email.subject, &vars)?),
                    html: Some(html),
                    text: Some(text),
                    coupon: if carries_coupon { coupon.map(|c| c.code.clone()) } else { None },
                    link_token,
                    unsubscribe_token,
                    send_window: window_for(email.kind),
                }))
            }
            Effect::Sms(sms) => Write::Outbox(Box::new(NewOutbox {
                id: sms.id,
                channel: domain::Channel::Sms,
                kind: domain_kind(sms.kind),
                tag: sms.tag,
                recipient: lead.phone.clone().unwrap_or_default(),
                subject: None,
                html: None,
                text: Some(template::render(Part::Sms, &sms.body, &vars)?),
                coupon: if template::uses_coupon(&sms.body) { coupon.map(|c| c.code.clone()) } else { None },
                link_token,
                unsubscribe_token,
                send_window: window_for(sms.kind),
            })),
            Effect::Schedule { id, after_ms, tag } => {
                let due_at = now.saturating_add(i64::try_from(after_ms).unwrap_or(i64::MAX));
                writes.push(Write::Timeline(TimelineNote::TimerSet { tag: tag.clone(), after_s: after_ms / 1000 }));
                Write::Timer { id, tag, due_at }
            }
            Effect::Cancel { id } => Write::CancelTimer { id },
            Effect::CancelAll => Write::CancelAllTimers,
            Effect::ListAdd { name } => Write::ListAdd { name },
            Effect::ListRemove { name } => Write::ListRemove { name },
            Effect::Variant { step, variant } => Write::Variant { step, variant },
        };
        writes.push(write);
    }
    Ok(writes)
}
