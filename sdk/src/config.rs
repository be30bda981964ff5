//! Config parsing whose errors a producer can act on: each names the JSON path of the field
//! (`emails[0].after`) and what is wrong with it.

use crate::ConfigNote;

/// A [`ConfigNote`] for `path` (e.g. `emails[2].coupon`; empty for the whole config).
///
/// ```
/// let problem = funnel_sdk::note("emails[0].after", "the first email must wait at least 20 minutes");
/// assert_eq!(problem.path, "emails[0].after");
/// ```
pub fn note(path: impl Into<String>, message: impl Into<String>) -> ConfigNote {
    ConfigNote { path: path.into(), message: message.into() }
}

/// Parse a JSON config into `T`, or one note naming the path where it went wrong.
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct Config { emails: Vec<Email> }
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct Email { after: funnel_sdk::Duration }
///
/// let errors = funnel_sdk::parse::<Config>(r#"{"emails": [{"after": "20m"}, {"after": "soon"}]}"#).unwrap_err();
/// assert_eq!(errors[0].path, "emails[1].after");
/// assert!(errors[0].message.contains("invalid duration"));
/// ```
pub fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Vec<ConfigNote>> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![note(path, clean_message(&err.into_inner().to_string()))]
    })?;
    // Trailing garbage after the object is an error too, reported at the root.
    de.end().map_err(|e| vec![note("", clean_message(&e.to_string()))])?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the path already says where.
fn clean_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
