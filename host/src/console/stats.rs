//! Stats: for a chosen range of days, leads captured against leads recovered and recovered
//! revenue per day (SVG charts drawn here), the conversion rate, and the per-message table
//! (tag, sent, clicked, recovered, revenue), and the A/B split table per step and variant. Totals and per-tag counts are `Database::stats`,
//! the daily counts `Database::daily_stats`: the numbers `GET /v1/stats` gives.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDate, TimeDelta};
use serde::Deserialize;

use super::ConsoleState;
use super::charts::{Series, bars};
use super::leads::internal;
use super::page::{Chrome, Tab, money, render};
use super::session::Signed;

/// Days shown when no range is chosen.
const DEFAULT_DAYS: i64 = 30;
/// The longest range (as the API's).
const MAX_DAYS: i64 = 366;

#[derive(Deserialize, Default)]
pub(super) struct RangeQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub(super) struct TagRow {
    pub tag: String,
    pub sent: i64,
    pub clicked: i64,
    pub recovered: i64,
    pub revenue: String,
}

pub(super) struct VariantRow {
    pub step: String,
    pub variant: String,
    pub leads: i64,
    pub sent: i64,
    pub clicked: i64,
    pub recovered: i64,
    /// Recovered over leads, e.g. `12.5%`.
    pub conversion: String,
    pub revenue: String,
}

pub(super) struct DayRow {
    pub day: String,
    pub leads: i64,
    pub recovered: i64,
    pub revenue: String,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    c: Chrome,
    from: String,
    to: String,
    error: Option<String>,
    leads: i64,
    recovered: i64,
    conversion: String,
    revenue: Vec<String>,
    leads_chart: String,
    revenue_charts: Vec<(String, String)>,
    tags: Vec<TagRow>,
    variants: Vec<VariantRow>,
    days: Vec<DayRow>,
    /// Recovery messages the contact cap deferred and dropped.
    capped: (i64, i64),
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn day_number(date: NaiveDate) -> i64 {
    date.signed_duration_since(epoch()).num_days()
}

fn date_of(day: i64) -> String {
    TimeDelta::try_days(day).and_then(|d| epoch().checked_add_signed(d)).map(|d| d.to_string()).unwrap_or_default()
}

pub(super) async fn page(State(state): State<ConsoleState>, signed: Signed, Query(q): Query<RangeQuery>) -> Response {
    let lang = signed.lang;
    let t = lang.strings();
    let store = &state.app.store;
    let producer = signed.producer();
    let today =
        day_number(chrono::DateTime::from_timestamp_millis(state.app.clock.now_ms()).unwrap_or_default().date_naive());
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok().map(day_number);
    let mut error = None;
    let (mut from, mut to) = (today - DEFAULT_DAYS + 1, today);
    if !q.from.trim().is_empty() || !q.to.trim().is_empty() {
        match (parse(&q.from), parse(&q.to)) {
            (Some(f), Some(t2)) if f <= t2 && t2 - f < MAX_DAYS => (from, to) = (f, t2),
            _ => error = Some(t.stats_bad_range.to_string()),
        }
    }
    let (stats, daily, revenue_daily, revenue_tags) = match (
        store.stats(producer).await,
        store.daily_stats(producer, from, to).await,
        store.daily_revenue(producer, from, to).await,
        store.revenue_by_tag(producer).await,
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return internal(lang, e),
    };
    let n = (to - from + 1) as usize;
    let labels: Vec<String> = (from..=to).map(date_of).collect();
    let (mut captured, mut recovered) = (vec![0; n], vec![0; n]);
    for row in daily.iter().filter(|r| r.tag.is_empty()) {
        let i = (row.day - from) as usize;
        if i < n {
            captured[i] = row.leads;
            recovered[i] = row.recovered;
        }
    }
    let mut per_currency: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &revenue_daily {
        let i = (r.day - from) as usize;
        if i < n {
            let day = &mut per_currency.entry(r.currency.clone()).or_insert_with(|| vec![0; n])[i];
            *day = day.saturating_add(r.amount_cents);
        }
    }
    let leads_chart = bars(
        t.stats_leads_chart,
        &labels,
        &[
            Series { name: t.stats_captured.into(), class: "captured", values: captured.clone() },
            Series { name: t.stats_recovered.into(), class: "recovered", values: recovered.clone() },
        ],
        &|v| v.to_string(),
    );
    let revenue_charts: Vec<(String, String)> = per_currency
        .iter()
        .map(|(currency, values)| {
            let title = format!("{} ({currency})", t.stats_revenue_chart);
            let c = currency.clone();
            let svg = bars(
                &title,
                &labels,
                &[Series { name: t.recovered_revenue.into(), class: "revenue", values: values.clone() }],
                &move |v| money(lang, v, &c),
            );
            (title, svg)
        })
        .collect();
    let days = (0..n)
        .map(|i| DayRow {
            day: labels[i].clone(),
            leads: captured[i],
            recovered: recovered[i],
            revenue: per_currency
                .iter()
                .filter(|(_, v)| v[i] != 0)
                .map(|(c, v)| money(lang, v[i], c))
                .collect::<Vec<_>>()
                .join(" + "),
        })
        .filter(|d| d.leads != 0 || d.recovered != 0 || !d.revenue.is_empty())
        .collect();
    let tags = stats
        .by_tag
        .iter()
        .map(|tag| TagRow {
            tag: tag.tag.clone(),
            sent: tag.sent,
            clicked: tag.clicked,
            recovered: tag.recovered,
            revenue: revenue_tags
                .iter()
                .filter(|(t2, _, _)| *t2 == tag.tag)
                .map(|(_, c, cents)| money(lang, *cents, c))
                .collect::<Vec<_>>()
                .join(" + "),
        })
        .collect();
    let variants = stats
        .by_variant
        .iter()
        .map(|v| VariantRow {
            step: v.step.clone(),
            variant: v.variant.clone(),
            leads: v.leads,
            sent: v.sent,
            clicked: v.clicked,
            recovered: v.recovered,
            conversion: if v.leads > 0 {
                format!("{:.1}%", v.recovered as f64 * 100.0 / v.leads as f64)
            } else {
                "—".into()
            },
            revenue: v
                .recovered_revenue
                .iter()
                .map(|r| money(lang, r.amount_cents, &r.currency))
                .collect::<Vec<_>>()
                .join(" + "),
        })
        .collect();
    let conversion = if stats.leads > 0 {
        format!("{:.1}%", stats.recovered as f64 * 100.0 / stats.leads as f64)
    } else {
        "—".into()
    };
    let page = StatsPage {
        c: Chrome::signed(&signed, Tab::Stats, t.stats_title),
        from: date_of(from),
        to: date_of(to),
        error,
        leads: stats.leads,
        recovered: stats.recovered,
        conversion,
        revenue: stats.recovered_revenue.iter().map(|r| money(lang, r.amount_cents, &r.currency)).collect(),
        leads_chart,
        revenue_charts,
        tags,
        variants,
        days,
        capped: (stats.capped.deferred, stats.capped.dropped),
    };
    render(StatusCode::OK, &page)
}
