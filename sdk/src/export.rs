//! The glue between a [`Plugin`] and the exported WIT functions: config and state
//! (de)serialization, and turning typed results into the contract's shapes.

use crate::bindings::funnel::plugin::types::{BindingContext, ConfigNote, ConfigReport, Invocation, PluginInfo};
use crate::{Call, Next, Plugin, config};

/// `describe` for plugin `P`.
pub fn describe<P: Plugin>() -> PluginInfo {
    P::info()
}

/// `validate-config` for plugin `P`: parse, then the plugin's own rules.
pub fn validate_config<P: Plugin>(
    config_json: &str,
    binding: &BindingContext,
) -> Result<ConfigReport, Vec<ConfigNote>> {
    let config: P::Config = config::parse(config_json)?;
    let notes = P::check(&config, binding)?;
    Ok(ConfigReport { summary: P::summary(&config), notes })
}

/// `handle` for plugin `P`: parse config and state, run, serialize the new state.
pub fn handle<P: Plugin>(invocation: Invocation) -> Result<Option<Vec<u8>>, String> {
    let config: P::Config = config::parse(&invocation.config_json).map_err(|notes| {
        let first = notes.first().map(|n| crate::wire::note_line(&n.path, &n.message)).unwrap_or_default();
        format!("config no longer parses: {first}")
    })?;
    let mut state: P::State = match &invocation.state {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| format!("stored state does not parse: {e}"))?,
        None => P::State::default(),
    };
    let call =
        Call { lead: &invocation.lead, event: invocation.event.clone(), now_ms: invocation.now_ms, config: &config };
    match P::handle(call, &mut state)? {
        Next::End => Ok(None),
        Next::Continue => serde_json::to_vec(&state).map(Some).map_err(|e| format!("state does not serialize: {e}")),
    }
}

/// Export `$plugin` (a type implementing [`Plugin`]) as the component's `funnel` world.
/// Use it once, at the crate root of a `cdylib` crate:
///
/// ```
/// use funnel_sdk::{Call, Next, Plugin, PluginInfo};
/// struct Quiet;
/// impl Plugin for Quiet {
///     type Config = serde_json::Value;
///     type State = ();
///     fn info() -> PluginInfo {
///         funnel_sdk::info("quiet", "0.1.0", "Sends nothing", &[])
///     }
///     fn handle(_call: Call<'_, Self::Config>, _state: &mut ()) -> Result<Next, String> {
///         Ok(Next::End)
///     }
/// }
/// funnel_sdk::export_plugin!(Quiet);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct FunnelWorldExport;
            impl $crate::bindings::Guest for FunnelWorldExport {
                fn describe() -> $crate::PluginInfo {
                    $crate::__private::describe::<$plugin>()
                }
                fn validate_config(
                    config_json: ::std::string::String,
                    binding: $crate::BindingContext,
                ) -> ::std::result::Result<$crate::ConfigReport, ::std::vec::Vec<$crate::ConfigNote>> {
                    $crate::__private::validate_config::<$plugin>(&config_json, &binding)
                }
                fn handle(
                    invocation: $crate::bindings::funnel::plugin::types::Invocation,
                ) -> ::std::result::Result<::std::option::Option<::std::vec::Vec<u8>>, ::std::string::String> {
                    $crate::__private::handle::<$plugin>(invocation)
                }
            }
    $crate::bindings::__export_funnel_world!(FunnelWorldExport with_types_in $crate::bindings);
        };
    };
}
