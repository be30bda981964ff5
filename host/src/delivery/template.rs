//! Message templates, rendered by the host (never by plugins) with minijinja: `{{name}}`,
//! `{{first_name}}`, `{{product}}`, `{{checkout_url}}` (a tracked link), `{{coupon_code}}`,
//! `{{unsubscribe_url}}`. HTML bodies are HTML-escaped; subjects, text bodies and SMS are not.
//! Unknown variables render empty, and a lead's field that is empty (no name, say) takes the
//! punctuation written around it along: `{{first_name}}, ainda dá tempo` renders
//! `Ainda dá tempo`, not `, ainda dá tempo`.
//!
//! A template is a producer's code: rendering is bounded in work ([`FUEL`]) and in output (the
//! same limits as a plugin's message, checked while writing, so a 60-byte template cannot
//! build a 30 MB body), and callers render off the async workers. [`check_config`] renders a
//! config's templates with sample values when a binding is saved, so a template past the
//! limits is refused at its field instead of failing at a lead.

use std::io::Write;

use funnel_sdk::limits::{MAX_EMAIL_BODY_BYTES, MAX_SMS_BYTES, MAX_SUBJECT_BYTES};
use minijinja::{AutoEscape, Environment, ErrorKind, Value, context};

/// Template instructions one rendering may run: a message of a few KB with a loop or two
/// takes hundreds (a unit test renders 200 paragraphs within it); every loop iteration costs
/// at least one, so a loop of 100k items stops here.
pub const FUEL: u64 = 50_000;

/// The values a template may use.
#[derive(Clone, Debug, Default)]
pub struct TemplateVars {
    pub name: String,
    pub first_name: String,
    pub product: String,
    pub checkout_url: String,
    pub coupon_code: String,
    pub unsubscribe_url: String,
}

/// Which part of a message a template renders: its escaping and its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Subject,
    Html,
    Text,
    Sms,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
            Part::Sms => "sms",
        }
    }

    /// The most bytes it may render to: what the host accepts of a plugin's message.
    pub fn max_bytes(self) -> usize {
        match self {
            Part::Subject => MAX_SUBJECT_BYTES,
            Part::Html | Part::Text => MAX_EMAIL_BODY_BYTES,
            Part::Sms => MAX_SMS_BYTES,
        }
    }
}

/// A template that does not parse or render, or breaks a limit.
#[derive(Debug, thiserror::Error)]
#[error("template error in {part}: {message}")]
pub struct TemplateError {
    pub part: &'static str,
    pub message: String,
    /// It broke a limit (work or size): the same template fails the same way for any lead.
    pub over_limit: bool,
}

/// A writer that refuses to grow past `max` bytes.
struct Capped {
    out: Vec<u8>,
    max: usize,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.max {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Render one template of `part` (HTML-escaped for [`Part::Html`]) within [`FUEL`] and the
/// part's size limit.
pub fn render(part: Part, source: &str, vars: &TemplateVars) -> Result<String, TemplateError> {
    // The template is the producer's and minijinja has had panics on odd input (an error past
    // column 65,535 of a line overflows its lexer's counter in debug builds): a panic is this
    // template's error, never one that unwinds through the caller's task.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render_unguarded(part, source, vars))).unwrap_or_else(
        |_| {
            Err(TemplateError {
                part: part.name(),
                message: "the template engine could not read this template (it stopped on an internal error); \
                          shorten its lines or simplify it"
                    .into(),
                over_limit: false,
            })
        },
    )
}

fn render_unguarded(part: Part, source: &str, vars: &TemplateVars) -> Result<String, TemplateError> {
    let html = part == Part::Html;
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| if html { AutoEscape::Html } else { AutoEscape::None });
    env.set_fuel(Some(FUEL));
    let max = part.max_bytes();
    let name = part.name();
    let err = |e: minijinja::Error| TemplateError { part: name, message: e.to_string(), over_limit: false };
    let template = env.template_from_str(source).map_err(err)?;
    // An empty field renders as a marker, so the punctuation it strands can be found after.
    let field = |value: &str| if value.trim().is_empty() { EMPTY.to_string() } else { value.replace(EMPTY, "") };
    let mut out = Capped { out: Vec::new(), max, over: false };
    let rendered = template.render_captured_to(
        context! {
            name => field(&vars.name), first_name => field(&vars.first_name), product => field(&vars.product),
            // Host-made links (hex tokens on the public URL): safe as they are, so they stay
            // readable in an href instead of being entity-escaped.
            checkout_url => Value::from_safe_string(vars.checkout_url.clone()),
            coupon_code => field(&vars.coupon_code),
            unsubscribe_url => Value::from_safe_string(vars.unsubscribe_url.clone()),
        },
        &mut out,
    );
    match rendered {
        Ok(_) => {}
        Err(_) if out.over => return Err(too_big(name, max)),
        Err(e) if e.kind() == ErrorKind::OutOfFuel => {
            let message = format!("too much work: rendering stopped after {FUEL} template instructions");
            return Err(TemplateError { part: name, message, over_limit: true });
        }
        // `'x' * 200000000`: minijinja's own cap on a built string.
        Err(e) if e.kind() == ErrorKind::InvalidOperation && e.to_string().contains("too large") => {
            return Err(too_big(name, max));
        }
        Err(e) => return Err(err(e)),
    }
    let rendered = String::from_utf8_lossy(&out.out).into_owned();
    Ok(tidy_empty_fields(&rendered))
}

fn too_big(part: &'static str, max: usize) -> TemplateError {
    TemplateError { part, message: format!("renders more than {max} bytes, the limit of a {part}"), over_limit: true }
}

/// Sample values for checking templates before any lead exists: long-ish, like a real lead's.
fn sample_vars() -> TemplateVars {
    TemplateVars {
        name: "Maria Aparecida dos Santos Oliveira".into(),
        first_name: "Maria".into(),
        product: "curso-completo-de-marketing-digital".into(),
        checkout_url: "https://funnel.example.com/r/0123456789abcdef0123456789abcdef".into(),
        coupon_code: "VOLTA10".into(),
        unsubscribe_url: "https://funnel.example.com/u/0123456789abcdef0123456789abcdef".into(),
    }
}

/// The templates of a plugin's config that break a limit when rendered with sample values,
/// as (path, message), paths like the plugins' own (`emails[0].html`). Every string that
/// contains template syntax is tried, as the part its key names (`subject`, `text`, an `sms`
/// field, else an HTML body); a string that does not parse is left to the plugin's own check
/// (it may not be a template at all).
pub fn check_config(config: &serde_json::Value) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    walk(config, String::new(), false, &mut problems);
    problems
}

fn walk(value: &serde_json::Value, path: String, in_sms: bool, problems: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, value) in fields {
                let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                let in_sms = in_sms || key == "sms";
                if let serde_json::Value::String(source) = value
                    && (source.contains("{{") || source.contains("{%"))
                {
                    let part = match key.as_str() {
                        _ if in_sms => Part::Sms,
                        "subject" => Part::Subject,
                        "text" => Part::Text,
                        _ => Part::Html,
                    };
                    if let Err(e) = render(part, source, &sample_vars())
                        && e.over_limit
                    {
                        problems.push((path, e.message));
                    }
                } else {
                    walk(value, path, in_sms, problems);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{i}]"), in_sms, problems);
            }
        }
        _ => {}
    }
}

/// Stands for an empty field while rendering (a private-use character no field keeps).
const EMPTY: char = '\u{E000}';

/// Remove the empty-field markers and the punctuation each one strands:
/// - at the start of the text or of an element, the separator after it goes and the next
///   letter is capitalized (`{{first_name}}, ainda` → `Ainda`);
/// - before a separator elsewhere, the space before it goes (`Oi {{first_name}}, seu` →
///   `Oi, seu`);
/// - at the end of a sentence, the separator before it goes (`para você, {{first_name}}!` →
///   `para você!`);
/// - between words, one of the two spaces goes.
fn tidy_empty_fields(text: &str) -> String {
    if !text.contains(EMPTY) {
        return text.to_string();
    }
    let is_separator = |c: char| matches!(c, ',' | ';' | ':');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(EMPTY) {
        out.push_str(&rest[..at]);
        rest = &rest[at + EMPTY.len_utf8()..];
        let after = rest.trim_start_matches(' ');
        let before = out.trim_end_matches(' ');
        let at_start = before.is_empty() || before.ends_with(['>', '\n']);
        let ends_sentence = after.is_empty() || after.starts_with(['.', '!', '?', '<', '\n', EMPTY]);
        if after.starts_with(is_separator) {
            let tail = after[1..].trim_start_matches(' ');
            if at_start {
                out.truncate(before.len());
                rest = tail;
                capitalize_next(&mut out, &mut rest);
            } else {
                out.truncate(before.len());
                rest = after;
            }
        } else if ends_sentence {
            let trimmed = before.trim_end_matches(is_separator).trim_end_matches(' ');
            out.truncate(trimmed.len());
            rest = after;
        } else if at_start {
            out.truncate(before.len());
            rest = after;
            capitalize_next(&mut out, &mut rest);
        } else if out.ends_with(' ') && rest.starts_with(' ') {
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Move the first character of `rest` to `out`, upper-cased.
fn capitalize_next(out: &mut String, rest: &mut &str) {
    if let Some(first) = rest.chars().next()
        && first.is_lowercase()
    {
        out.extend(first.to_uppercase());
        *rest = &rest[first.len_utf8()..];
    }
}

/// A plain-text version of an HTML body: tags dropped, entities for the escaped characters
/// turned back, blank runs collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    // The href of the link being read, written after its text: "Pay (https://…)".
    let mut href: Option<String> = None;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let closing = tag.starts_with('/');
                let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                if name == "a" && !closing {
                    href = tag.split("href=\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_string);
                } else if name == "a" && closing {
                    if let Some(link) = href.take() {
                        out.push_str(&format!(" ({link})"));
                    }
                } else if matches!(name.as_str(), "p" | "br" | "div" | "li" | "tr" | "h1" | "h2" | "h3") {
                    out.push('\n');
                }
            }
            _ if in_tag => tag.push(c),
            _ => out.push(c),
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    out.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

/// Whether a template uses the coupon (then the message is reported as carrying it): the
/// SDK's test, so plugins and host mean the same thing by it.
pub use funnel_sdk::coupon::uses_coupon;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            name: "Ana <b>Souza</b>".into(),
            first_name: "Ana".into(),
            checkout_url: "https://x.test/r/abc".into(),
            coupon_code: "VOLTA10".into(),
            ..TemplateVars::default()
        }
    }

    #[test]
    fn html_is_escaped_subject_is_not() {
        let html = render(Part::Html, "<p>Hi {{name}}</p>", &vars()).unwrap();
        assert_eq!(html, "<p>Hi Ana &lt;b&gt;Souza&lt;&#x2f;b&gt;</p>");
        assert_eq!(render(Part::Subject, "{{first_name}}, {{coupon_code}}", &vars()).unwrap(), "Ana, VOLTA10");
    }

    #[test]
    fn unknown_variables_render_empty_and_bad_syntax_is_an_error() {
        assert_eq!(render(Part::Subject, "a{{nope}}b", &vars()).unwrap(), "ab");
        let err = render(Part::Html, "{{ oops", &vars()).unwrap_err();
        assert_eq!(err.part, "html");
    }

    #[test]
    fn an_empty_field_takes_its_punctuation_along() {
        let nameless = TemplateVars { checkout_url: "https://x.test/r/abc".into(), ..TemplateVars::default() };
        let cases = [
            ("{{first_name}}, ainda dá tempo de finalizar", "Ainda dá tempo de finalizar"),
            ("Um presente para você, {{first_name}}", "Um presente para você"),
            ("Um presente para você, {{first_name}}!", "Um presente para você!"),
            ("Oi {{first_name}}, seu pedido", "Oi, seu pedido"),
            ("<p>Oi {{first_name}}, faltou pouco!</p>", "<p>Oi, faltou pouco!</p>"),
            ("<p>{{first_name}}: volte</p>", "<p>Volte</p>"),
            ("seu {{product}} está esperando", "seu está esperando"),
            ("{{first_name}} {{name}}, oi", "Oi"),
        ];
        for (template, want) in cases {
            let part = if template.starts_with('<') { Part::Html } else { Part::Text };
            assert_eq!(render(part, template, &nameless).unwrap(), want, "{template}");
        }
        assert_eq!(render(Part::Text, "{{first_name}}, ainda dá tempo", &vars()).unwrap(), "Ana, ainda dá tempo");
    }

    /// Found by the fuzzer: minijinja's lexer counts columns in a u16, and an error past
    /// column 65,535 of one line overflowed it (a panic in debug builds). A producer's template
    /// is an error, never a panic that takes the dispatch task with it.
    #[test]
    fn a_template_with_an_error_past_column_65535_is_an_error_not_a_panic() {
        for broken in ["{{ broken", "{{ \"open"] {
            let source = format!("{}{broken}", "x".repeat(70_000));
            for part in [Part::Html, Part::Subject] {
                let rendered = render(part, &source, &vars());
                assert!(rendered.is_err(), "{broken}: {:?}", rendered.map(|r| r.len()));
            }
        }
        let long_line_ok = format!("{}{{{{ first_name }}}}", "x".repeat(70_000));
        assert!(render(Part::Html, &long_line_ok, &vars()).is_ok_and(|r| r.ends_with("Ana")));
    }

    #[test]
    fn rendering_stops_at_the_parts_size_and_at_its_fuel() {
        let bomb = "{% for i in range(300) %}{{ 'x' * 100000 }}{% endfor %}";
        let err = render(Part::Html, bomb, &vars()).unwrap_err();
        assert!(err.over_limit && err.message.contains("524288 bytes"), "{err}");
        let err = render(Part::Subject, "{{ 'x' * 999 }}", &vars()).unwrap_err();
        assert!(err.over_limit && err.message.contains("998 bytes"), "{err}");
        assert_eq!(render(Part::Subject, "{{ 'x' * 998 }}", &vars()).unwrap().len(), 998);
        let err = render(Part::Text, "{% for i in range(100000) %}{% endfor %}", &vars()).unwrap_err();
        assert!(err.over_limit && err.message.contains("too much work"), "{err}");
        let err = render(Part::Html, "{{ 'x' * 200000000 }}", &vars()).unwrap_err();
        assert!(err.over_limit, "{err}");
        // A real message's template is far from the fuel limit.
        let real = "<p>Oi {{first_name}},</p>".repeat(200) + "{% if coupon_code %}{{coupon_code}}{% endif %}";
        assert!(render(Part::Html, &real, &vars()).is_ok());
    }

    #[test]
    fn a_configs_templates_are_checked_at_their_paths() {
        let config = serde_json::json!({"emails": [
            {"subject": "{{ 'x' * 999 }}", "html": "<p>{{name}}</p>", "text": "{{ oops"},
            {"sms": {"body": "{{ 'x' * 1601 }}"}, "note": "no template here"},
        ]});
        let paths: Vec<String> = check_config(&config).into_iter().map(|(path, _)| path).collect();
        assert_eq!(paths, ["emails[0].subject", "emails[1].sms.body"]);
    }

    #[test]
    fn text_from_html() {
        assert_eq!(
            html_to_text("<p>Hi &amp; welcome</p><p><a href=\"https://x.test/r/1\">Back</a></p>"),
            "Hi & welcome\nBack (https://x.test/r/1)"
        );
    }
}
