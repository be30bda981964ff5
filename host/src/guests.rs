//! WebAssembly components built from this workspace by `build.rs` and embedded in the binary:
//! the built-in plugins every producer can bind by name and, in test builds (the `test-guests`
//! feature), the guests the tests run. `build.rs` holds the one table of built-in names.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The built-in plugin called `name`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(builtin, _)| *builtin == name).map(|(_, bytes)| *bytes)
}

/// Names of the built-in plugins, in the table's order.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(name, _)| *name)
}

/// The built-in names as a list for messages: `four-emails, flow`.
pub fn builtin_names_listed() -> String {
    builtin_names().collect::<Vec<_>>().join(", ")
}
