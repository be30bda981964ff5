//! `GET /v1/stats`: leads, recovered count and revenue, and per message tag sends, clicks and
//! recoveries, live. With `?from=YYYY-MM-DD&to=YYYY-MM-DD` it adds `daily`: the same counts
//! per UTC day of the range, from the stats roll-up (`store::rollup`, refreshed on the
//! `stats_rollup_schedule`), so a range costs a few rows however many leads it covers.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{Problem, Query};
use crate::store::rollup::DailyRow;

/// The longest range `daily` answers for.
const MAX_DAYS: i64 = 366;

/// `GET /v1/stats`'s query: both or neither, `from` not after `to`, at most 366 days.
#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct StatsQuery {
    /// The first UTC day, YYYY-MM-DD.
    #[schemars(extend("format" = "date"))]
    from: Option<String>,
    /// The last UTC day, YYYY-MM-DD.
    #[schemars(extend("format" = "date"))]
    to: Option<String>,
}

pub(super) async fn stats(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Value>, Problem> {
    let range = day_range(&q)?;
    let stats = state.store.stats(&producer).await?;
    let mut body = serde_json::to_value(stats).map_err(Problem::internal)?;
    if let Some((from, to)) = range {
        let rows = state.store.daily_stats(&producer, from, to).await?;
        body["daily"] = json!(daily(&rows));
    }
    Ok(Json(body))
}

/// `GET /v1/stats`'s documented answer (OpenAPI `responses`).
pub(super) fn responses() -> Value {
    let int = json!({"type": "integer"});
    let revenue = json!({"type": "array", "items": {"type": "object", "required": ["currency", "amount_cents"],
        "properties": {"currency": {"type": "string"}, "amount_cents": int}}});
    let by_tag = json!({"type": "array", "items": {"type": "object", "required": ["tag", "sent", "clicked", "recovered"],
        "properties": {"tag": {"type": "string"}, "sent": int, "clicked": int, "recovered": int}}});
    let by_variant = json!({"type": "array",
        "description": "Per A/B split step and variant: its leads; of the messages queued to them from the moment they \
                        entered it, how many were sent and clicked; how many of its leads were recovered, and their revenue",
        "items": {"type": "object",
            "required": ["step", "variant", "leads", "sent", "clicked", "recovered", "recovered_revenue"],
            "properties": {"step": {"type": "string"}, "variant": {"type": "string"}, "leads": int, "sent": int,
                "clicked": int, "recovered": int, "recovered_revenue": revenue}}});
    json!({"200": super::plugins::json_answer("Your numbers, live", json!({"type": "object",
        "required": ["leads", "recovered", "recovered_revenue", "by_tag", "by_variant"],
        "properties": {"leads": int, "recovered": int, "recovered_revenue": revenue, "by_tag": by_tag,
            "by_variant": by_variant,
            "daily": {"type": "array", "description": "with ?from=&to=: per UTC day of the range"}}}))})
}

/// Both or neither of `from` and `to`, as UTC day numbers, `from <= to`, at most a year.
fn day_range(q: &StatsQuery) -> Result<Option<(i64, i64)>, Problem> {
    let (from, to) = match (&q.from, &q.to) {
        (None, None) => return Ok(None),
        (Some(from), Some(to)) => (day("from", from)?, day("to", to)?),
        (Some(_), None) => return Err(Problem::field("to", "give both from and to (YYYY-MM-DD)")),
        (None, Some(_)) => return Err(Problem::field("from", "give both from and to (YYYY-MM-DD)")),
    };
    if to < from {
        return Err(Problem::field("to", "must not be before from"));
    }
    if to - from >= MAX_DAYS {
        return Err(Problem::field("to", format!("a range of at most {MAX_DAYS} days")));
    }
    Ok(Some((from, to)))
}

fn day(field: &str, text: &str) -> Result<i64, Problem> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| Problem::field(field, format!("{text:?} is not a date: use YYYY-MM-DD, e.g. 2026-11-23")))?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Ok(date.signed_duration_since(epoch).num_days())
}

fn date_of(day: i64) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::try_days(day)?))
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// Rows (sorted by day, then tag; the lead-level row has the empty tag) → one object per day.
fn daily(rows: &[DailyRow]) -> Vec<Value> {
    let mut days: Vec<Value> = Vec::new();
    for row in rows {
        let date = date_of(row.day);
        if days.last().is_none_or(|d| d["day"] != date.as_str()) {
            days.push(json!({"day": date, "leads": 0, "recovered": 0, "by_tag": []}));
        }
        let Some(day) = days.last_mut() else { continue };
        if row.tag.is_empty() {
            day["leads"] = json!(row.leads);
            day["recovered"] = json!(row.recovered);
        } else if let Some(tags) = day["by_tag"].as_array_mut() {
            tags.push(json!({"tag": row.tag, "sent": row.sent, "clicked": row.clicked, "recovered": row.recovered}));
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: Option<&str>, to: Option<&str>) -> StatsQuery {
        StatsQuery { from: from.map(String::from), to: to.map(String::from) }
    }

    #[test]
    fn a_range_is_both_ends_in_order_and_at_most_a_year() {
        assert_eq!(day_range(&query(None, None)).ok(), Some(None));
        assert_eq!(day_range(&query(Some("2026-01-01"), Some("2026-01-02"))).ok(), Some(Some((20_454, 20_455))));
        for (from, to, field) in [
            (Some("2026-01-02"), Some("2026-01-01"), "to"),
            (Some("2026-1-x"), Some("2026-01-01"), "from"),
            (Some("2026-01-01"), None, "to"),
            (None, Some("2026-01-01"), "from"),
            (Some("2024-01-01"), Some("2026-01-01"), "to"),
        ] {
            let problem = day_range(&query(from, to)).expect_err("refused");
            assert_eq!(problem.errors[0].path, field, "{from:?} {to:?}");
        }
    }

    #[test]
    fn rows_fold_into_one_object_per_day() {
        let row =
            |day, tag: &str, leads, sent| DailyRow { day, tag: tag.into(), leads, recovered: 0, sent, clicked: 0 };
        let days = daily(&[row(20_454, "", 2, 0), row(20_454, "email-1", 0, 2), row(20_455, "email-2", 0, 1)]);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0]["day"], "2026-01-01");
        assert_eq!(days[0]["leads"], 2);
        assert_eq!(days[0]["by_tag"][0]["sent"], 2);
        assert_eq!(days[1]["leads"], 0);
        assert_eq!(days[1]["by_tag"][0]["tag"], "email-2");
    }
}
