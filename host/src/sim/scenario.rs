//! The scenario file of `funnel simulate`: a lead, what happens to it and when.

use funnel_sdk::Duration;
use serde::Deserialize;

use crate::domain::Price;

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The binding's scope and coupon; producer-wide when absent.
    #[serde(default)]
    pub binding: Option<ScenarioBinding>,
    pub lead: ScenarioLead,
    #[serde(default)]
    pub events: Vec<ScenarioEvent>,
    /// How long to simulate after capture.
    pub until: Duration,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioBinding {
    pub product_id: Option<String>,
    pub plan_id: Option<String>,
    pub coupon: Option<ScenarioCoupon>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCoupon {
    pub code: String,
    pub discount_percent: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioLead {
    pub email: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub product_id: Option<String>,
    pub plan_id: Option<String>,
    pub price: Option<Price>,
    pub url: Option<String>,
}

/// Something that happens to the lead at `at` after capture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEvent {
    pub at: Duration,
    #[serde(rename = "type")]
    pub kind: ScenarioEventKind,
    /// For clicks and opens: which sent message, counting from 1.
    pub message: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ScenarioEventKind {
    #[serde(rename = "click")]
    Click,
    #[serde(rename = "open")]
    Open,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "unsubscribe")]
    Unsubscribe,
    #[serde(rename = "checkout.updated")]
    CheckoutUpdated,
}

/// Parse and check a scenario; the error names the path.
pub fn parse(json: &str) -> Result<Scenario, String> {
    let scenario: Scenario = funnel_sdk::parse(json).map_err(|notes| {
        notes
            .iter()
            .map(|n| if n.path.is_empty() { n.message.clone() } else { format!("{}: {}", n.path, n.message) })
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if scenario.lead.email.trim().is_empty() || !scenario.lead.email.contains('@') {
        return Err(format!("lead.email: {:?} is not an email address", scenario.lead.email));
    }
    for (i, event) in scenario.events.iter().enumerate() {
        let needs_message = matches!(event.kind, ScenarioEventKind::Click | ScenarioEventKind::Open);
        match (needs_message, event.message) {
            (true, None) => {
                return Err(format!(
                    "events[{i}].message: a click or open names the message it is about (1 = first sent)"
                ));
            }
            (true, Some(0)) => return Err(format!("events[{i}].message: messages count from 1")),
            (false, Some(_)) => return Err(format!("events[{i}].message: only clicks and opens name a message")),
            _ => {}
        }
        if event.at > scenario.until {
            return Err(format!("events[{i}].at: {} is after until ({})", event.at, scenario.until));
        }
    }
    if let Some(binding) = &scenario.binding
        && binding.coupon.is_some()
        && (binding.product_id.is_none() || binding.plan_id.is_none())
    {
        return Err("binding.coupon: a coupon needs a binding with a product_id and a plan_id".into());
    }
    Ok(scenario)
}
