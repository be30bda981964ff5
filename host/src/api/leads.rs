//! `GET /v1/leads` ("my leads", newest first, with a cursor) and `GET /v1/leads/{id}` (with the
//! lead's timeline, its unique coupon and its A/B split variants). A producer sees only its own
//! leads.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{Path, Problem, Query};
use crate::domain::coupon::CouponSource;
use crate::domain::{Channel, LeadStatus, MessageKind, MessageStatus, TimelineKind};
use crate::store::leads::LeadSummary;

/// `GET /v1/leads`'s query.
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ListQuery {
    /// The `next_cursor` of the previous page.
    #[schemars(regex(pattern = super::CURSOR_PATTERN))]
    cursor: Option<String>,
    /// Leads a page, 1 to 500 (50 when absent).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    limit: Option<i64>,
}

/// The most leads one page lists.
const MAX_PAGE: i64 = 500;

/// `GET /v1/leads/{id}`'s path.
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct LeadPath {
    #[schemars(regex(pattern = super::ID_PATTERN))]
    id: String,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A lead as the API shows it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct LeadView {
    pub id: String,
    pub email: String,
    pub status: LeadStatus,
    pub product_id: Option<String>,
    pub plan_id: Option<String>,
    /// The cart's price, when the platform sent one.
    pub value: Option<MoneyView>,
    /// RFC 3339.
    pub captured_at: String,
    /// Oldest first.
    pub messages: Vec<MessageView>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct MoneyView {
    pub amount_cents: i64,
    pub currency: Option<String>,
}

/// A message a plugin sent the lead.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct MessageView {
    pub id: String,
    pub tag: String,
    pub channel: Channel,
    pub kind: MessageKind,
    pub status: MessageStatus,
    /// RFC 3339.
    pub queued_at: String,
    pub clicked: bool,
    pub opened: bool,
}

/// `GET /v1/leads`'s answer.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct LeadPage {
    pub leads: Vec<LeadView>,
    /// Pass as `?cursor=` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// `GET /v1/leads/{id}`'s answer: the lead, its unique coupon, its A/B split variants and its
/// timeline.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct LeadWithTimeline {
    #[serde(flatten)]
    pub lead: LeadView,
    /// The unique coupon the lead was given (a pool's or a pattern's), if its plugin asked for
    /// one: the platform learns which code went to whom.
    pub coupon: Option<LeadCouponView>,
    /// The lead's variant at each A/B split step it passed, oldest first.
    pub variants: Vec<VariantView>,
    /// Oldest first.
    pub timeline: Vec<TimelineLine>,
}

/// A unique coupon given to a lead.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct LeadCouponView {
    pub code: String,
    pub discount_percent: u8,
    pub source: CouponSource,
    pub product_id: String,
    pub plan_id: String,
    /// RFC 3339.
    pub assigned_at: String,
}

/// A lead's variant at one split step.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct VariantView {
    pub step: String,
    pub variant: String,
    /// RFC 3339.
    pub assigned_at: String,
}

/// One line of a lead's timeline.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct TimelineLine {
    /// RFC 3339.
    pub at: String,
    pub kind: TimelineKind,
    /// JSON for message entries (email, sms, dropped, deferred, bounced, send_failed), a
    /// sentence for the others.
    pub detail: String,
}

fn lead_view(lead: &LeadSummary) -> LeadView {
    LeadView {
        id: lead.id.clone(),
        email: lead.email.clone(),
        status: lead.status,
        product_id: lead.product_id.clone(),
        plan_id: lead.plan_id.clone(),
        value: lead.price_cents.map(|amount_cents| MoneyView { amount_cents, currency: lead.currency.clone() }),
        captured_at: rfc3339(lead.captured_at),
        messages: lead
            .messages
            .iter()
            .map(|m| MessageView {
                id: m.id.clone(),
                tag: m.tag.clone(),
                channel: m.channel,
                kind: m.kind,
                status: m.status,
                queued_at: rfc3339(m.queued_at),
                clicked: m.clicked,
                opened: m.opened,
            })
            .collect(),
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Query(q): Query<ListQuery>,
) -> Result<Json<LeadPage>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::field("limit", format!("must be 1 to {MAX_PAGE} (got {limit})")));
    }
    let after = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| Problem::field("cursor", "use the next_cursor of the previous page"))?,
        ),
    };
    let leads = state.store.list_leads(&producer, after, limit).await?;
    let next =
        if leads.len() as i64 == limit { leads.last().map(|l| format!("{}.{}", l.captured_at, l.id)) } else { None };
    Ok(Json(LeadPage { leads: leads.iter().map(lead_view).collect(), next_cursor: next }))
}

pub(super) async fn one(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Path(LeadPath { id }): Path<LeadPath>,
) -> Result<Json<LeadWithTimeline>, Problem> {
    let lead = state
        .store
        .lead_summary(&producer, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no lead {id:?} of yours")))?;
    let timeline = state
        .store
        .timeline(&id, 0)
        .await?
        .into_iter()
        .map(|e| TimelineLine { at: rfc3339(e.at), kind: e.kind(), detail: e.detail() })
        .collect();
    let coupon = state.store.lead_coupon(&id).await?.map(|c| LeadCouponView {
        code: c.code,
        discount_percent: c.discount_percent,
        source: c.source,
        product_id: c.product_id,
        plan_id: c.plan_id,
        assigned_at: rfc3339(c.assigned_at),
    });
    let variants = state
        .store
        .lead_variants(&id)
        .await?
        .into_iter()
        .map(|v| VariantView { step: v.step, variant: v.variant, assigned_at: rfc3339(v.assigned_at) })
        .collect();
    Ok(Json(LeadWithTimeline { lead: lead_view(&lead), coupon, variants, timeline }))
}
