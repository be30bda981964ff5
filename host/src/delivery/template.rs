//! Message templates, rendered by the host (never by plugins) with minijinja: `{{name}}`,
//! `{{first_name}}`, `{{product}}`, `{{checkout_url}}` (a tracked link), `{{coupon_code}}`,
//! `{{unsubscribe_url}}`. HTML bodies are HTML-escaped; subjects, text bodies and SMS are not.
//! Unknown variables render empty, and a lead's field that is empty (no name, say) takes the
//! punctuation written around it along: `{{first_name}}, ainda dá tempo` renders
//! `Ainda dá tempo`, not `, ainda dá tempo`.

use minijinja::{AutoEscape, Environment, Value, context};

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

/// A template that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("template error in {part}: {message}")]
pub struct TemplateError {
    pub part: &'static str,
    pub message: String,
}

/// Render one template; `html` turns on HTML escaping.
pub fn render(part: &'static str, source: &str, vars: &TemplateVars, html: bool) -> Result<String, TemplateError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| if html { AutoEscape::Html } else { AutoEscape::None });
    let err = |e: minijinja::Error| TemplateError { part, message: e.to_string() };
    let template = env.template_from_str(source).map_err(err)?;
    // An empty field renders as a marker, so the punctuation it strands can be found after.
    let field = |value: &str| if value.trim().is_empty() { EMPTY.to_string() } else { value.replace(EMPTY, "") };
    let rendered = template
        .render(context! {
            name => field(&vars.name), first_name => field(&vars.first_name), product => field(&vars.product),
            // Host-made links (hex tokens on the public URL): safe as they are, so they stay
            // readable in an href instead of being entity-escaped.
            checkout_url => Value::from_safe_string(vars.checkout_url.clone()),
            coupon_code => field(&vars.coupon_code),
            unsubscribe_url => Value::from_safe_string(vars.unsubscribe_url.clone()),
        })
        .map_err(err)?;
    Ok(tidy_empty_fields(&rendered))
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
        let html = render("html", "<p>Hi {{name}}</p>", &vars(), true).unwrap();
        assert_eq!(html, "<p>Hi Ana &lt;b&gt;Souza&lt;&#x2f;b&gt;</p>");
        assert_eq!(render("subject", "{{first_name}}, {{coupon_code}}", &vars(), false).unwrap(), "Ana, VOLTA10");
    }

    #[test]
    fn unknown_variables_render_empty_and_bad_syntax_is_an_error() {
        assert_eq!(render("subject", "a{{nope}}b", &vars(), false).unwrap(), "ab");
        let err = render("html", "{{ oops", &vars(), true).unwrap_err();
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
            let html = template.starts_with('<');
            assert_eq!(render("t", template, &nameless, html).unwrap(), want, "{template}");
        }
        assert_eq!(render("t", "{{first_name}}, ainda dá tempo", &vars(), false).unwrap(), "Ana, ainda dá tempo");
    }

    #[test]
    fn text_from_html() {
        assert_eq!(
            html_to_text("<p>Hi &amp; welcome</p><p><a href=\"https://x.test/r/1\">Back</a></p>"),
            "Hi & welcome\nBack (https://x.test/r/1)"
        );
    }
}
