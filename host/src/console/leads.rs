//! The leads report ("my leads"): newest first, filtered by status, product and capture date,
//! searched by email, paged by a keyset cursor, and exported as CSV with the same filter
//! (streamed page by page, so a big export holds one page in memory).

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;

use crate::domain::{LeadStatus, MessageStatus};
use serde::Deserialize;

use super::ConsoleState;
use super::i18n::{Lang, Strings};
use super::page::{Chrome, Tab, datetime, money, render};
use super::session::{Refusal, Signed};
use crate::store::console::{LeadFilter, LeadRow};

/// Rows per page of the report.
const PAGE: i64 = 50;
/// Rows per query of the CSV export.
const CSV_PAGE: i64 = 1000;

/// The statuses a lead can have, in the order the filter offers them.
pub(super) const STATUSES: &[LeadStatus] = &[
    LeadStatus::Open,
    LeadStatus::Recovering,
    LeadStatus::Recovered,
    LeadStatus::Purchased,
    LeadStatus::Refunded,
    LeadStatus::Unsubscribed,
    LeadStatus::Parked,
];

/// The report's query string, as typed.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct FilterQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub cursor: String,
}

/// A filter field that did not parse: (field, message).
type FieldProblem = (&'static str, String);

fn day_start_ms(text: &str) -> Option<i64> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

impl FilterQuery {
    /// The store's filter, or the fields that did not parse.
    fn filter(&self, t: &Strings) -> Result<LeadFilter, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let status = self.status.trim();
        if !status.is_empty() && LeadStatus::parse(status).is_none() {
            problems.push(("status", t.filter_bad_status.to_string()));
        }
        let mut date = |field: &'static str, text: &str, plus_days: i64| {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            match day_start_ms(text) {
                Some(ms) => Some(ms + plus_days * 86_400_000),
                None => {
                    problems.push((field, t.filter_bad_date.to_string()));
                    None
                }
            }
        };
        let from = date("from", &self.from, 0);
        // `to` is a whole day: up to the next midnight.
        let to = date("to", &self.to, 1);
        if let (Some(f), Some(t2)) = (from, to)
            && t2 <= f
        {
            problems.push(("to", t.filter_to_before_from.to_string()));
        }
        let q = self.q.trim();
        if q.len() > 320 {
            problems.push(("q", t.filter_search_too_long.to_string()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        Ok(LeadFilter {
            status: some(status),
            product_id: some(&self.product),
            captured_from: from,
            captured_to: to,
            email_contains: some(q),
        })
    }

    /// The query string of this filter (without the cursor), for links.
    pub(super) fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("status", self.status.trim())
            .append_pair("product", self.product.trim())
            .append_pair("from", self.from.trim())
            .append_pair("to", self.to.trim())
            .append_pair("q", self.q.trim())
            .finish()
    }
}

fn cursor(text: &str) -> Option<(i64, String)> {
    let (at, id) = text.split_once('.')?;
    let id = id.to_string();
    (id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(())?;
    Some((at.parse().ok()?, id))
}

/// A lead as a row of the report.
pub(super) struct LeadView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub product: String,
    pub value: String,
    pub status: String,
    pub status_label: &'static str,
    pub captured_at: String,
    pub last_message: String,
}

/// The label of a status in the language (the raw value for one this version does not know).
pub(super) fn status_label(t: &'static Strings, status: LeadStatus) -> &'static str {
    match status {
        LeadStatus::Open => t.status_open,
        LeadStatus::Recovering => t.status_recovering,
        LeadStatus::Recovered => t.status_recovered,
        LeadStatus::Purchased => t.status_purchased,
        LeadStatus::Refunded => t.status_refunded,
        LeadStatus::Unsubscribed => t.status_unsubscribed,
        LeadStatus::Parked => t.status_parked,
    }
}

pub(super) fn message_status_label(t: &'static Strings, status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Queued | MessageStatus::Sending => t.msg_queued,
        MessageStatus::Sent => t.msg_sent,
        MessageStatus::Dropped => t.msg_dropped,
        MessageStatus::Bounced => t.msg_bounced,
        MessageStatus::Failed => t.msg_failed,
    }
}

fn product_plan(row: &LeadRow) -> String {
    match (&row.product_id, &row.plan_id) {
        (Some(product), Some(plan)) => format!("{product} / {plan}"),
        (Some(product), None) => product.clone(),
        _ => String::new(),
    }
}

pub(super) fn lead_view(lang: Lang, row: &LeadRow) -> LeadView {
    let t = lang.strings();
    LeadView {
        id: row.id.clone(),
        email: row.email.clone(),
        name: row.name.clone().unwrap_or_default(),
        product: product_plan(row),
        value: match (row.price_cents, &row.currency) {
            (Some(cents), Some(currency)) => money(lang, cents, currency),
            _ => String::new(),
        },
        status: row.status.to_string(),
        status_label: status_label(t, row.status),
        captured_at: datetime(row.captured_at),
        last_message: row
            .last_message
            .as_ref()
            .map(|(tag, channel, status, at)| {
                format!("{tag} ({channel}, {}) · {}", message_status_label(t, *status), datetime(*at))
            })
            .unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "leads.html")]
struct LeadsPage {
    c: Chrome,
    q: FilterQuery,
    statuses: Vec<(&'static str, &'static str)>,
    products: Vec<String>,
    problems: Vec<FieldProblem>,
    leads: Vec<LeadView>,
    next: Option<String>,
    first_page: bool,
    filter_qs: String,
}

impl LeadsPage {
    fn problem(&self, field: &str) -> Option<&str> {
        self.problems.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }
}

pub(super) async fn report(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(q): Query<FilterQuery>,
) -> Response {
    let lang = signed.lang;
    let t = lang.strings();
    let store = &state.app.store;
    let producer = signed.producer().to_string();
    let (filter, problems) = match q.filter(t) {
        Ok(filter) => (Some(filter), Vec::new()),
        Err(problems) => (None, problems),
    };
    let after = cursor(&q.cursor);
    let leads = match &filter {
        Some(filter) => match store.console_leads(&producer, filter, after.clone(), PAGE).await {
            Ok(rows) => rows,
            Err(e) => return internal(lang, e),
        },
        None => Vec::new(),
    };
    let products = match store.lead_products(&producer).await {
        Ok(p) => p,
        Err(e) => return internal(lang, e),
    };
    let next =
        (leads.len() as i64 == PAGE).then(|| leads.last().map(|l| format!("{}.{}", l.captured_at, l.id))).flatten();
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = LeadsPage {
        c: Chrome::signed(&signed, Tab::Leads, t.leads_title),
        statuses: STATUSES.iter().map(|s| (s.as_str(), status_label(t, *s))).collect(),
        products,
        problems,
        leads: leads.iter().map(|row| lead_view(lang, row)).collect(),
        next,
        first_page: after.is_none(),
        filter_qs: q.query_string(),
        q,
    };
    render(status, &page)
}

pub(super) fn internal(lang: Lang, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console read failed");
    Refusal::Internal(lang).into_response()
}

/// A CSV cell: quoted, quotes doubled, and a leading `=`, `+`, `-`, `@` (or tab, CR) made
/// inert so a spreadsheet does not run a lead's name as a formula.
fn cell(text: &str) -> String {
    let guarded =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

fn csv_line(row: &LeadRow) -> String {
    let amount = row.price_cents.map(|c| format!("{}.{:02}", c / 100, (c % 100).abs())).unwrap_or_default();
    let (tag, sent_at) = match &row.last_message {
        Some((tag, _, _, at)) => (tag.clone(), datetime(*at)),
        None => (String::new(), String::new()),
    };
    let fields = [
        row.id.clone(),
        row.email.clone(),
        row.name.clone().unwrap_or_default(),
        row.product_id.clone().unwrap_or_default(),
        row.plan_id.clone().unwrap_or_default(),
        amount,
        row.currency.clone().unwrap_or_default(),
        row.status.to_string(),
        chrono::DateTime::from_timestamp_millis(row.captured_at).map(|t| t.to_rfc3339()).unwrap_or_default(),
        tag,
        sent_at,
    ];
    let mut line = fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// The whole filtered report as CSV (RFC 4180), streamed.
pub(super) async fn csv(State(state): State<ConsoleState>, signed: Signed, Query(q): Query<FilterQuery>) -> Response {
    let lang = signed.lang;
    let filter = match q.filter(lang.strings()) {
        Ok(filter) => filter,
        Err(problems) => {
            let text = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; ");
            return super::page::error_page(lang, StatusCode::UNPROCESSABLE_ENTITY, text);
        }
    };
    let store = state.app.store.clone();
    let producer = signed.producer().to_string();
    let header_line =
        "id,email,name,product_id,plan_id,value,currency,status,captured_at,last_message,last_message_at\r\n";
    let stream = futures_stream(store, producer, filter, header_line.to_string());
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, header::HeaderValue::from_static("attachment; filename=\"leads.csv\""));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// The CSV's chunks: the header, then one chunk per page of rows.
fn futures_stream(
    store: crate::store::Database,
    producer: String,
    filter: LeadFilter,
    header_line: String,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    struct Cursor {
        store: crate::store::Database,
        producer: String,
        filter: LeadFilter,
        header: Option<String>,
        after: Option<(i64, String)>,
        done: bool,
    }
    let start = Cursor { store, producer, filter, header: Some(header_line), after: None, done: false };
    futures_util::stream::unfold(start, |mut c| async move {
        if let Some(header) = c.header.take() {
            return Some((Ok(header), c));
        }
        if c.done {
            return None;
        }
        match c.store.console_leads(&c.producer, &c.filter, c.after.clone(), CSV_PAGE).await {
            Ok(rows) => {
                if (rows.len() as i64) < CSV_PAGE {
                    c.done = true;
                }
                c.after = rows.last().map(|r| (r.captured_at, r.id.clone()));
                if rows.is_empty() {
                    return None;
                }
                Some((Ok(rows.iter().map(csv_line).collect::<String>()), c))
            }
            Err(e) => {
                tracing::error!(error = %e, "CSV export stopped");
                c.done = true;
                Some((Err(std::io::Error::other(e.to_string())), c))
            }
        }
    })
}
