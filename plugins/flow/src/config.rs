//! The shape of a flow config (the public contract): steps by id, a start, optional jumps on
//! purchase, click and unsubscribe.

use std::collections::BTreeMap;

use funnel_sdk::Duration;
use serde::Deserialize;

/// A whole flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    pub start: Option<String>,
    #[serde(default)]
    pub on_purchase: Option<String>,
    #[serde(default)]
    pub on_click: Option<String>,
    #[serde(default)]
    pub on_unsubscribe: Option<String>,
    pub steps: BTreeMap<String, Step>,
}

/// One step: exactly one action (email and sms may stand together).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub wait: Option<Duration>,
    pub email: Option<EmailAction>,
    pub sms: Option<SmsAction>,
    #[serde(rename = "if")]
    pub condition: Option<Condition>,
    pub then: Option<String>,
    #[serde(rename = "else")]
    pub otherwise: Option<String>,
    pub list: Option<ListAction>,
    pub end: Option<bool>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Recovery,
    Transactional,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailAction {
    pub subject: String,
    pub html: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub coupon: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsAction {
    pub body: String,
    #[serde(default)]
    pub kind: Kind,
}

/// `{"add": NAME}`, `{"remove": NAME}` or `{"move": {"from"?, "to"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAction {
    pub add: Option<String>,
    pub remove: Option<String>,
    #[serde(rename = "move")]
    pub move_to: Option<MoveAction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveAction {
    pub from: Option<String>,
    pub to: String,
}

/// A branch condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    /// `"purchased"` or `"clicked_any"`.
    Named(String),
    /// `{"clicked": STEP}`, `{"opened": STEP}`, `{"in_list": NAME}`, `{"all": […]}`, `{"any": […]}`, `{"not": C}`.
    Compound(CompoundCondition),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CompoundCondition {
    Clicked(String),
    Opened(String),
    InList(String),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// The pseudo-step that ends the run.
pub const END: &str = "end";
