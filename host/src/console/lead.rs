//! One lead: its details, its whole timeline in order (events received, the plugin's
//! decisions and log lines, timers set and fired with late ones marked, messages and their
//! fate, clicks, the purchase), and each message: an email's rendered HTML in a sandboxed
//! frame (served with a `sandbox` CSP, so no script in it can run), an SMS's text.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::timeline::MessageNote;
use crate::domain::{EventStatus, LeadEvent, TimelineKind, TimelineNote};

use super::ConsoleState;
use super::i18n::Strings;
use super::leads::{LeadView, internal, lead_view, message_status_label};
use super::page::{Chrome, Tab, datetime, datetime_s, duration, money, render, signed_error_page};
use super::session::Signed;
use crate::store::console::{EventRow, LeadDetail, MessageRow};
use crate::store::timeline::TimelineEntry;

/// A timer that fired more than this after its due time is marked late.
const LATE_MS: i64 = 1000;

/// One line of the timeline.
pub(super) struct Line {
    pub at: String,
    /// A CSS class for the kind of line.
    pub class: &'static str,
    pub label: String,
    pub detail: String,
    /// The message the line is about, when there is one to open.
    pub message_id: Option<String>,
    pub late: bool,
}

pub(super) struct MessageView {
    pub id: String,
    pub channel: String,
    pub tag: String,
    pub status: String,
    pub status_label: &'static str,
    pub reason: String,
    pub subject: String,
    pub text: String,
    pub coupon: String,
    pub queued_at: String,
    pub sent_at: String,
    pub clicked_at: String,
    pub opened_at: String,
    pub recovered: bool,
}

#[derive(Template)]
#[template(path = "lead.html")]
struct LeadPage {
    c: Chrome,
    lead: LeadView,
    phone: String,
    checkout_url: String,
    plugin: String,
    purchased_at: String,
    revenue: String,
    lines: Vec<Line>,
    messages: Vec<MessageView>,
}

fn event_line(t: &Strings, e: &EventRow) -> Line {
    let mut late = false;
    let label = |text: &str| (text.to_string(), String::new());
    let (label, mut detail) = match &e.event {
        Some(LeadEvent::Timer { tag, due_at, .. }) => {
            late = e.created_at - due_at > LATE_MS;
            let text = if late {
                format!("{tag} — {} {}", t.late_by, duration((e.created_at - due_at) / 1000))
            } else {
                tag.clone()
            };
            (t.tl_timer_fired.to_string(), text)
        }
        Some(LeadEvent::Captured) => label(t.tl_captured),
        Some(LeadEvent::Updated) => label(t.tl_updated),
        Some(LeadEvent::Purchased { .. }) => label(t.tl_purchased),
        Some(LeadEvent::Refunded) => label(t.tl_refunded),
        Some(LeadEvent::Clicked { .. }) => label(t.tl_clicked),
        Some(LeadEvent::Opened { .. }) => label(t.tl_opened),
        Some(LeadEvent::Unsubscribed) => label(t.tl_unsubscribed),
        Some(LeadEvent::Bounced { .. }) => label(t.tl_bounced),
        // A platform event that made no lead event (stored as `ignored`).
        None => (format!("{} ignored", t.tl_event), String::new()),
    };
    match e.status {
        EventStatus::Failed => {
            detail = format!("{detail} {} {}", t.tl_event_failed, e.error.clone().unwrap_or_default())
        }
        EventStatus::Skipped => detail = format!("{detail} ({})", t.tl_event_skipped),
        EventStatus::Pending | EventStatus::Done => {}
    }
    let message_id = match &e.event {
        Some(
            LeadEvent::Clicked { message_id } | LeadEvent::Opened { message_id } | LeadEvent::Bounced { message_id },
        ) => Some(message_id.clone()),
        _ => None,
    };
    Line { at: datetime_s(e.created_at), class: "event", label, detail: detail.trim().to_string(), message_id, late }
}

fn timeline_line(t: &Strings, e: &TimelineEntry) -> Line {
    // A message's parts: tag, “subject”, SMS body, coupon, — reason (those it has).
    let message = |tag: &str, subject: Option<&str>, body: Option<&str>, coupon: Option<&str>, reason: Option<&str>| {
        let mut parts = vec![tag.to_string()];
        parts.extend(subject.map(|s| format!("“{s}”")));
        parts.extend(body.map(str::to_string));
        parts.extend(coupon.map(|c| format!("{} {c}", t.coupon)));
        parts.extend(reason.map(|r| format!("— {r}")));
        parts.join(" ")
    };
    let sent = |m: &MessageNote| {
        message(&m.tag, m.subject.as_deref(), m.body.as_deref(), m.coupon.as_deref(), m.reason.as_deref())
    };
    let (class, label, detail) = match &e.note {
        TimelineNote::Email(m) => ("message", t.tl_email_sent, sent(m)),
        TimelineNote::Sms(m) => ("message", t.tl_sms_sent, sent(m)),
        TimelineNote::Dropped(m) => ("warn", t.tl_dropped, sent(m)),
        TimelineNote::Deferred(h) => {
            let until = h.until_local.as_deref().map(|l| format!(" → {l}")).unwrap_or_default();
            let held = message(&h.tag, None, None, None, Some(h.reason.as_str()));
            ("decision", t.tl_deferred, format!("{held}{until}"))
        }
        TimelineNote::Bounced(m) => ("warn", t.tl_message_bounced, sent(m)),
        TimelineNote::SendFailed(m) => ("warn", t.tl_send_failed, sent(m)),
        TimelineNote::Log { .. } => ("log", t.tl_log, e.detail()),
        TimelineNote::Refused { .. } => ("log", TimelineKind::Refused.as_str(), e.detail()),
        TimelineNote::TimerSet { .. } => ("decision", t.tl_timer_set, e.detail()),
        TimelineNote::ListAdd { .. } => ("decision", t.tl_list_add, e.detail()),
        TimelineNote::ListRemove { .. } => ("decision", t.tl_list_remove, e.detail()),
        TimelineNote::RunEnded {} => ("decision", t.tl_run_ended, String::new()),
        TimelineNote::CouponAssigned { .. } => ("decision", t.tl_coupon_assigned, e.detail()),
        TimelineNote::Variant { .. } => ("decision", t.tl_variant, e.detail()),
        TimelineNote::Retry { .. } => ("warn", t.tl_retry, e.detail()),
        TimelineNote::Failed { .. } => ("warn", t.tl_failed, e.detail()),
        TimelineNote::Unsubscribed { .. } => ("event", t.tl_unsubscribed, e.detail()),
    };
    let message_id = e.note.message_id().map(str::to_string);
    Line { at: datetime_s(e.at), class, label: label.to_string(), detail, message_id, late: false }
}

/// Events and timeline entries merged by time; at equal times the event (the cause) first.
fn lines(t: &Strings, events: &[EventRow], entries: &[TimelineEntry]) -> Vec<Line> {
    let mut keyed: Vec<(i64, u8, i64, Line)> = Vec::with_capacity(events.len() + entries.len());
    for e in events {
        keyed.push((e.created_at, 0, e.seq, event_line(t, e)));
    }
    for e in entries {
        keyed.push((e.at, 1, e.seq, timeline_line(t, e)));
    }
    keyed.sort_by_key(|(at, source, seq, _)| (*at, *source, *seq));
    keyed.into_iter().map(|(_, _, _, line)| line).collect()
}

fn message_view(t: &'static Strings, m: &MessageRow, recovered_by: Option<&str>) -> MessageView {
    let opt = |v: Option<i64>| v.map(datetime).unwrap_or_default();
    MessageView {
        id: m.id.clone(),
        channel: m.channel.to_string(),
        tag: m.tag.clone(),
        status: m.status.to_string(),
        status_label: message_status_label(t, m.status),
        reason: m.reason.clone().unwrap_or_default(),
        subject: m.subject.clone().unwrap_or_default(),
        text: m.text.clone().unwrap_or_default(),
        coupon: m.coupon.clone().unwrap_or_default(),
        queued_at: datetime(m.queued_at),
        sent_at: opt(m.sent_at),
        clicked_at: opt(m.clicked_at),
        opened_at: opt(m.opened_at),
        recovered: recovered_by == Some(m.id.as_str()),
    }
}

fn not_found(signed: &Signed) -> Response {
    signed_error_page(signed, Tab::Leads, StatusCode::NOT_FOUND, signed.lang.strings().lead_not_found.to_string())
}

pub(super) async fn timeline(State(state): State<ConsoleState>, signed: Signed, Path(id): Path<String>) -> Response {
    let lang = signed.lang;
    let t = lang.strings();
    let store = &state.app.store;
    let producer = signed.producer();
    let detail: LeadDetail = match store.console_lead(producer, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return not_found(&signed),
        Err(e) => return internal(lang, e),
    };
    // The lead is this producer's (checked above), so its timeline is too.
    let (events, entries, messages) = match (
        store.lead_events(producer, &id).await,
        store.timeline(&id, 0).await,
        store.lead_messages(producer, &id).await,
    ) {
        (Ok(e), Ok(t), Ok(m)) => (e, t, m),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(lang, e),
    };
    let revenue = match (&detail.recovered_by, detail.row.price_cents, &detail.row.currency) {
        (Some(_), Some(cents), Some(currency)) => money(lang, cents, currency),
        _ => String::new(),
    };
    let lead = lead_view(lang, &detail.row);
    let page = LeadPage {
        c: Chrome::signed(&signed, Tab::Leads, format!("{} · {}", t.lead_title, detail.row.email)),
        phone: detail.phone.clone().unwrap_or_default(),
        checkout_url: detail.checkout_url.clone().unwrap_or_default(),
        plugin: detail.plugin.clone().unwrap_or_default(),
        purchased_at: detail.purchased_at.map(datetime).unwrap_or_default(),
        revenue,
        lines: lines(t, &events, &entries),
        messages: messages.iter().map(|m| message_view(t, m, detail.recovered_by.as_deref())).collect(),
        lead,
    };
    render(StatusCode::OK, &page)
}

/// The policy of a preview: no script, no plugins, no forms, no requests but images; the
/// frame is a unique origin (CSP `sandbox` without `allow-scripts` or `allow-same-origin`),
/// so it can reach neither the console's cookies nor its DOM.
const PREVIEW_CSP: &str =
    "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; frame-ancestors 'self'";

pub(super) async fn preview(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path((id, message)): Path<(String, String)>,
) -> Response {
    let lang = signed.lang;
    match state.app.store.message_html(signed.producer(), &id, &message).await {
        Ok(Some(html)) => {
            let mut response = (StatusCode::OK, html).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PREVIEW_CSP));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Ok(None) => not_found(&signed),
        Err(e) => internal(lang, e),
    }
}
