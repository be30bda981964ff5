//! Text a platform, a producer or a plugin sends: which control characters it may hold.
//! PostgreSQL `text` cannot store NUL at all (the INSERT fails), and no field of this API has
//! a use for the other C0 controls, so they are refused where they enter, naming the field.
//! Single-line values (ids, names, emails, phones, URLs) take no control character at all;
//! multi-line text (templates, message bodies, configs) may hold tab, line feed and
//! carriage return.

use serde_json::Value;

/// A single-line value's schema pattern: no control character (what [`single_line_problem`]
/// refuses: C0, DEL and C1).
pub const SINGLE_LINE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";

/// A required single-line value's schema pattern: [`SINGLE_LINE`] with at least one character
/// that is not white space (handlers trim such values and refuse them blank).
pub const NON_BLANK_LINE: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// What is wrong with a required single-line value of at most `max` bytes, if anything:
/// blank, too long, or holding a control character. The schemas say the same with
/// [`NON_BLANK_LINE`] and `maxLength`.
pub fn required_line_problem(text: &str, max: usize) -> Option<String> {
    if text.trim().is_empty() {
        Some("must not be empty".into())
    } else if let Some(problem) = single_line_problem(text) {
        Some(problem)
    } else if text.len() > max {
        Some(format!("must be at most {max} bytes (got {})", text.len()))
    } else {
        None
    }
}

/// What is wrong with a single-line value, if anything: any control character (C0, DEL, C1).
pub fn single_line_problem(text: &str) -> Option<String> {
    text.chars().find(|c| c.is_control()).map(|c| format!("must not contain control characters (found {})", name(c)))
}

/// What is wrong with multi-line text, if anything: a control character other than tab, line
/// feed or carriage return.
pub fn multi_line_problem(text: &str) -> Option<String> {
    text.chars()
        .find(|c| is_forbidden_in_text(*c))
        .map(|c| format!("must not contain control characters other than tab and line breaks (found {})", name(c)))
}

fn is_forbidden_in_text(c: char) -> bool {
    (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}'
}

/// `U+0000` for a character.
fn name(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Every string (and key) of a JSON value holding a control character other than tab and
/// line breaks, as `(path, message)`: `events[0].checkout.name`, under `prefix`.
pub fn json_problems(value: &Value, prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    walk(value, prefix.to_string(), &mut found);
    found
}

fn walk(value: &Value, path: String, found: &mut Vec<(String, String)>) {
    // A body of a few MB cannot list thousands of errors usefully; the first hundred say enough.
    if found.len() >= 100 {
        return;
    }
    match value {
        Value::String(s) => {
            if let Some(problem) = multi_line_problem(s) {
                found.push((if path.is_empty() { "$".into() } else { path }, problem));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if let Some(problem) = single_line_problem(key) {
                    found.push((child.clone(), format!("the key {problem}")));
                    continue;
                }
                walk(item, child, found);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Replace the characters [`multi_line_problem`] refuses with U+FFFD, for text the host keeps
/// but did not ask for (a plugin's log lines and error messages).
pub fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_forbidden_in_text) {
        text.chars().map(|c| if is_forbidden_in_text(c) { '\u{fffd}' } else { c }).collect::<String>().into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_string() {
        let value = serde_json::json!({"events": [{"checkout": {"name": "Ana\u{0}", "ok": "a\tb\nc"}}]});
        let found = json_problems(&value, "");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "events[0].checkout.name");
        assert!(found[0].1.contains("U+0000"));
        assert_eq!(json_problems(&serde_json::json!({"a": 1}), "config"), vec![]);
        assert_eq!(sanitize("a\u{0}b\tc"), "a\u{fffd}b\tc");
        assert!(single_line_problem("a\tb").is_some());
        assert!(single_line_problem("Élise").is_none());
    }
}
