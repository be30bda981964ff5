//! WebAssembly components built from this workspace by `build.rs` and embedded in the binary:
//! the built-in plugins every producer can bind by name, and the guests the tests run.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The built-in plugins, by the name a binding uses.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name {
        "four-emails" => Some(FOUR_EMAILS),
        "flow" => Some(FLOW),
        _ => None,
    }
}

/// Names of the built-in plugins.
pub const BUILTIN_NAMES: &[&str] = &["four-emails", "flow"];
