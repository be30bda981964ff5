//! # funnel-sdk: write a recovery strategy for funnel in Rust
//!
//! A funnel plugin is a WebAssembly component that decides, event by event, how to win back a
//! buyer who abandoned a checkout. This crate gives you safe Rust types over the
//! `funnel:plugin` WIT contract (`wit/funnel.wit`), a [`Plugin`] trait with typed config and
//! state, the [`export_plugin!`] macro, and helpers for configs ([`Duration`],
//! [`config::parse`]).
//!
//! ## Layout
//! - [`Plugin`], [`Call`], [`Next`]: what you implement.
//! - [`host`]: the capabilities (send an email or SMS, timers, lists, coupon, messages, log).
//!   They only *record* effects; the host commits them when `handle` returns `Ok`.
//! - [`config`]: JSON config parsing whose errors name the field path.
//! - [`coupon`]: the coupon convention (which bindings have one, the producer's line to add).
//! - [`limits`]: what the host accepts in a message (subject, bodies, tags), with its words.
//! - [`Duration`]: `"20m"`, `"5h"`, `"3d"`.
//! - [`wire`]: the formats of `funnel simulate` (scenario file, output lines), shared with the
//!   host.
//! - [`testing`] (native targets only): build your crate to a component and run scenarios
//!   through the real runtime on a virtual clock, from your `tests/`.
//!
//! ## Example
//! ```
//! use funnel_sdk::{host, Call, Capability, ConfigNote, Duration, Event, MessageKind, Next, Plugin, PluginInfo};
//! use serde::{Deserialize, Serialize};
//!
//! /// One reminder email, `after` the lead was captured.
//! struct OneReminder;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { after: Duration, subject: String, html: String }
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct State { sent: bool }
//!
//! impl Plugin for OneReminder {
//!     type Config = Config;
//!     type State = State;
//!
//!     fn info() -> PluginInfo {
//!         funnel_sdk::info("one-reminder", "1.0.0", "One email after a delay", &[Capability::Email, Capability::Timers])
//!     }
//!
//!     fn check(config: &Config, _binding: &funnel_sdk::BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
//!         if config.after < Duration::from_mins(20) {
//!             return Err(vec![funnel_sdk::note("after", "wait at least 20m")]);
//!         }
//!         Ok(vec![])
//!     }
//!
//!     fn handle(call: Call<'_, Config>, state: &mut State) -> Result<Next, String> {
//!         match call.event {
//!             Event::Captured => {
//!                 host::schedule(call.config.after, "reminder").map_err(|e| e.to_string())?;
//!                 Ok(Next::Continue)
//!             }
//!             Event::Timer(_) if !call.lead.purchased && !state.sent => {
//!                 let email = host::Email::new(&call.config.subject, &call.config.html, "reminder");
//!                 host::send_email(&email).map_err(|e| e.to_string())?;
//!                 state.sent = true;
//!                 Ok(Next::End)
//!             }
//!             Event::Purchased(_) => Ok(Next::End),
//!             _ => Ok(Next::Continue),
//!         }
//!     }
//! }
//!
//! funnel_sdk::export_plugin!(OneReminder);
//! # fn main() {}
//! ```
//! Build it with `funnel plugin build` (crate type `cdylib`; it prints where the component is)
//! and try it with `funnel simulate --plugin "$(funnel plugin build)" --config … --scenario …`.

#![warn(missing_docs)]

pub mod config;
pub mod coupon;
mod duration;
mod export;
pub mod host;
pub mod limits;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod wire;

pub use config::{note, parse};
pub use duration::{Duration, DurationError};

/// The raw bindings generated from `wit/funnel.wit`. Prefer the re-exports and [`host`].
#[doc(hidden)]
#[allow(clippy::too_many_arguments, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "funnel",
        pub_export_macro: true,
        export_macro_name: "__export_funnel_world",
        default_bindings_module: "funnel_sdk::bindings",
    });
}

pub use bindings::funnel::plugin::types::{
    BindingContext, Capability, Channel, ConfigNote, ConfigReport, Coupon, Event, HostError, Lead, LogLevel,
    MessageKind, MessageStatus, Money, PluginInfo, Scope, SentMessage, TimerFired, WeightedVariant,
};

/// One event of one lead, with the binding's config already parsed.
///
/// ```
/// use funnel_sdk::{Call, Event, Next};
/// struct Config { min_cents: i64 }
/// fn handle(call: Call<'_, Config>) -> Next {
///     let cheap = call.lead.price.as_ref().is_none_or(|p| p.amount_cents <= call.config.min_cents);
///     match call.event {
///         Event::Captured if cheap => Next::End,
///         _ => Next::Continue,
///     }
/// }
/// # let lead = funnel_sdk::Lead { id: "l".into(), email: "a@b.c".into(), name: None, first_name: None, phone: None,
/// #   product_id: None, plan_id: None, price: None, captured_at_ms: 0, purchased: false, suppressed: false };
/// let call = Call { lead: &lead, event: Event::Captured, now_ms: 0, config: &Config { min_cents: 2000 } };
/// assert_eq!(handle(call), Next::End);
/// ```
pub struct Call<'a, C> {
    /// The lead as the host knows it now.
    pub lead: &'a Lead,
    /// What happened.
    pub event: Event,
    /// The host's clock (virtual under `funnel simulate`), Unix milliseconds.
    pub now_ms: i64,
    /// The binding's config.
    pub config: &'a C,
}

/// What to do with the lead's run after an event.
///
/// ```
/// use funnel_sdk::{Event, Next};
/// fn after(event: &Event) -> Next {
///     match event {
///         Event::Purchased(_) | Event::Unsubscribed => Next::End, // the host cancels its timers
///         _ => Next::Continue,
///     }
/// }
/// assert_eq!(after(&Event::Unsubscribed), Next::End);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep the run (and its state) for the next event.
    Continue,
    /// The strategy is finished with this lead: the host cancels its pending timers.
    End,
}

/// A recovery strategy. Implement it and export it with [`export_plugin!`]; the crate-level
/// example is a whole plugin, and `examples/rust-plugin` in funnel's repository a real one.
///
/// The host calls [`info`](Plugin::info) once at upload, [`check`](Plugin::check) and
/// [`summary`](Plugin::summary) when a producer binds the plugin, and
/// [`handle`](Plugin::handle) for every event of every lead, one at a time per lead.
pub trait Plugin {
    /// The binding's config, parsed from JSON. Use `#[serde(deny_unknown_fields)]` so typos
    /// are reported.
    type Config: serde::de::DeserializeOwned;
    /// What the plugin remembers about one lead between events (stored by the host as JSON).
    type State: serde::Serialize + serde::de::DeserializeOwned + Default;

    /// Name, version, description and the capabilities the plugin will use.
    fn info() -> PluginInfo;

    /// Rules beyond the config's shape. Return remarks for an accepted config, or the
    /// problems, each with its path. The default accepts any config that parses.
    fn check(config: &Self::Config, binding: &BindingContext) -> Result<Vec<ConfigNote>, Vec<ConfigNote>> {
        let _ = (config, binding);
        Ok(Vec::new())
    }

    /// One line describing what a valid config does, shown to the producer.
    fn summary(config: &Self::Config) -> String {
        let _ = config;
        String::new()
    }

    /// Handle one event. Errors discard everything recorded in this call; the host retries.
    fn handle(call: Call<'_, Self::Config>, state: &mut Self::State) -> Result<Next, String>;
}

/// Build a [`PluginInfo`].
///
/// ```
/// use funnel_sdk::Capability;
/// let info = funnel_sdk::info("one-reminder", "1.0.0", "One email after a delay", &[Capability::Email, Capability::Timers]);
/// assert_eq!(info.capabilities.len(), 2);
/// ```
pub fn info(name: &str, version: &str, description: &str, capabilities: &[Capability]) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        version: version.to_string(),
        description: description.to_string(),
        capabilities: capabilities.to_vec(),
    }
}

#[doc(hidden)]
pub mod __private {
    pub use crate::export::{describe, handle, validate_config};
}
