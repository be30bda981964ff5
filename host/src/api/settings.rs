//! `PUT /v1/settings`, `GET /v1/settings`: a producer's settings, today the contact frequency
//! cap `{"max_recovery_messages_per_contact": {"count": 3, "per": "24h", "over": "defer"}}`
//! (`over` defaults to `defer`; `null` or absent: no cap). A PUT replaces the whole document.
//! Enforced at send time by `delivery::hold`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Problem, parse_json};
use crate::store::settings::{CapOver, ContactCap};

/// The body of `PUT /v1/settings`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    /// At most `count` recovery messages to one person (their email address) in any `per`,
    /// across all your bindings; transactional messages are exempt. `null`: no cap.
    #[serde(default)]
    max_recovery_messages_per_contact: Option<CapBody>,
}

/// The contact cap as sent.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CapBody {
    /// 1 to 100.
    #[schemars(range(min = 1, max = ContactCap::MAX_COUNT))]
    count: i64,
    /// A duration from `1h` to `30d` (`90m`, `24h`, `7d`).
    #[schemars(regex(pattern = DURATION), length(max = 64))]
    per: String,
    /// `defer` (the default: sent once the period frees a slot) or `drop`.
    #[serde(default)]
    #[schemars(schema_with = "over_schema")]
    over: Option<String>,
}

/// `over`'s words are [`CapOver`]'s own.
fn over_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let words = [CapOver::Defer.as_str(), CapOver::Drop.as_str()];
    schemars::json_schema!({"type": ["string", "null"], "enum": [words[0], words[1], null]})
}

/// A duration as `funnel_sdk::Duration` reads it: amounts with units, `90m`, `1d12h`.
const DURATION: &str = r"^([0-9]{1,9}[smhd])+$";

const PREFIX: &str = "max_recovery_messages_per_contact";

/// Check a cap, naming each bad field.
fn parse_cap(body: &CapBody) -> Result<ContactCap, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, message: String| errors.push(FieldError { path: format!("{PREFIX}.{field}"), message });
    let max = i64::from(ContactCap::MAX_COUNT);
    let count = u32::try_from(body.count).ok().filter(|c| (1..=ContactCap::MAX_COUNT).contains(c));
    if count.is_none() {
        err("count", format!("must be 1 to {max} (got {})", body.count));
    }
    let per = match body.per.parse::<funnel_sdk::Duration>() {
        Err(_) => {
            err(
                "per",
                format!("{:?} is not a duration like 24h, 90m or 7d", body.per.chars().take(64).collect::<String>()),
            );
            None
        }
        Ok(d) => {
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if (ContactCap::MIN_PER_MS..=ContactCap::MAX_PER_MS).contains(&ms) {
                Some(ms)
            } else {
                err("per", format!("must be 1h to 30d (got {})", body.per));
                None
            }
        }
    };
    let over = match body.over.as_deref().map(str::parse::<CapOver>) {
        None => Some(CapOver::Defer),
        Some(Ok(over)) => Some(over),
        Some(Err(message)) => {
            err("over", message);
            None
        }
    };
    match (count, per, over) {
        (Some(count), Some(per_ms), Some(over)) => Ok(ContactCap { count, per_ms, over }),
        _ => Err(errors),
    }
}

/// The settings as stored (the answer of both routes); `null`: no cap.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct SettingsDocument {
    max_recovery_messages_per_contact: Option<CapDocument>,
}

/// The contact cap as stored: `per` in its shortest form (`1d`), `over` always given.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct CapDocument {
    count: u32,
    per: String,
    /// `defer` or `drop`.
    over: &'static str,
}

fn document(cap: Option<ContactCap>) -> Json<SettingsDocument> {
    Json(SettingsDocument {
        max_recovery_messages_per_contact: cap.map(|c| CapDocument {
            count: c.count,
            per: funnel_sdk::Duration::from_millis(u64::try_from(c.per_ms).unwrap_or(0)).to_string(),
            over: c.over.as_str(),
        }),
    })
}

pub(super) async fn put(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    body: Bytes,
) -> Result<Json<SettingsDocument>, Problem> {
    let settings: Settings = parse_json(&body)?;
    let cap = settings
        .max_recovery_messages_per_contact
        .as_ref()
        .map(parse_cap)
        .transpose()
        .map_err(Problem::invalid_fields)?;
    state.store.put_contact_cap(&producer, cap.as_ref(), state.clock.now_ms()).await?;
    Ok(document(cap))
}

pub(super) async fn get(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<SettingsDocument>, Problem> {
    Ok(document(state.store.contact_cap(&producer).await?))
}
