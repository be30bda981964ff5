//! Message templates, rendered by the host (never by plugins) with minijinja: `{{name}}`,
//! `{{first_name}}`, `{{product}}`, `{{checkout_url}}` (a tracked link), `{{coupon_code}}`,
//! `{{unsubscribe_url}}`. HTML bodies are HTML-escaped; subjects, text bodies and SMS are not.
//! Unknown variables render empty.

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
    template
        .render(context! {
            name => vars.name, first_name => vars.first_name, product => vars.product,
            // Host-made links (hex tokens on the public URL): safe as they are, so they stay
            // readable in an href instead of being entity-escaped.
            checkout_url => Value::from_safe_string(vars.checkout_url.clone()),
            coupon_code => vars.coupon_code,
            unsubscribe_url => Value::from_safe_string(vars.unsubscribe_url.clone()),
        })
        .map_err(err)
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

/// Whether a template uses the coupon (then the message is reported as carrying it).
pub fn uses_coupon(source: &str) -> bool {
    source.contains("coupon_code")
}

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
    fn text_from_html() {
        assert_eq!(
            html_to_text("<p>Hi &amp; welcome</p><p><a href=\"https://x.test/r/1\">Back</a></p>"),
            "Hi & welcome\nBack (https://x.test/r/1)"
        );
    }
}
