//! The coupon convention shared by strategies and the host: the host renders `{{coupon_code}}`
//! to the binding's coupon and reports a message as carrying the coupon when one of its
//! templates uses it ([`uses_coupon`], the host's own test). A coupon exists only on a binding
//! that names a product and a plan with one registered.
//!
//! An email that should carry the coupon but does not show `{{coupon_code}}` gets the
//! producer's *coupon line* ([`add_line`]), a line from the config in the email's own language;
//! without one, the code alone ([`DEFAULT_LINE`]): the SDK never adds words of its own to a
//! producer's email.

use crate::BindingContext;

/// The coupon line of a config that gives none: the code alone, a paragraph of its own, so no
/// language is assumed and a config that omits the line still binds.
pub const DEFAULT_LINE: &str = "{{coupon_code}}";

/// The remark at an email's `coupon` field when it falls back to [`DEFAULT_LINE`].
pub const DEFAULT_LINE_NOTE: &str = "this email carries the coupon but does not show {{coupon_code}}: the code alone is \
     added as its last paragraph; put {{coupon_code}} in it, or set coupon_line (a sentence in the email's language)";

/// Whether a template uses the coupon: `coupon_code` is among the variables it reads, as the
/// host's template engine (minijinja) parses it — in an expression (`{{ coupon_code }}`, `{{
/// coupon_code | upper }}`) or a tag (`{% if coupon_code %}`), not in a comment or a string
/// literal. The host decides "this message carries the coupon" with this very function, so the
/// words mean the same on both sides. A template that does not parse (refused when its config
/// is checked) uses the coupon if it names it anywhere.
///
/// ```
/// assert!(funnel_sdk::coupon::uses_coupon("Use {{ coupon_code }}"));
/// assert!(funnel_sdk::coupon::uses_coupon("{% if coupon_code %}Use {{ coupon_code|upper }}{% endif %}"));
/// assert!(!funnel_sdk::coupon::uses_coupon("Use o cupom"));
/// assert!(!funnel_sdk::coupon::uses_coupon("{# no {{ coupon_code }} this time #}Volte"));
/// assert!(!funnel_sdk::coupon::uses_coupon("{{ 'coupon_code' }}"));
/// ```
pub fn uses_coupon(template: &str) -> bool {
    const NAME: &str = "coupon_code";
    if !template.contains(NAME) {
        // No parse for the templates that cannot use it (most subjects and SMS bodies).
        return false;
    }
    match minijinja::Environment::new().template_from_str(template) {
        Ok(parsed) => parsed.undeclared_variables(false).contains(NAME),
        Err(_) => true,
    }
}

/// Why this binding cannot carry a coupon, if it cannot.
pub fn binding_problem(binding: &BindingContext) -> Option<&'static str> {
    if binding.scope.product_id.is_none() || binding.scope.plan_id.is_none() {
        Some("coupons need a binding with a product and a plan")
    } else if binding.coupon.is_none() {
        Some("no coupon is registered for this product and plan: register one with POST /v1/coupons first")
    } else {
        None
    }
}

/// What is wrong with a coupon line from a config, if anything: it must show the code.
///
/// ```
/// assert!(funnel_sdk::coupon::line_problem("Use o cupom {{coupon_code}}.").is_none());
/// assert!(funnel_sdk::coupon::line_problem("Use o cupom.").is_some());
/// ```
pub fn line_problem(line: &str) -> Option<&'static str> {
    if line.trim().is_empty() {
        Some("must not be empty")
    } else if !uses_coupon(line) {
        Some("must show the code with {{coupon_code}}")
    } else {
        None
    }
}

/// Whether an email that carries the coupon needs a coupon line: a body does not show the code.
///
/// ```
/// assert!(funnel_sdk::coupon::needs_line("<p>Oi</p>", None));
/// assert!(!funnel_sdk::coupon::needs_line("<p>{{coupon_code}}</p>", None));
/// assert!(funnel_sdk::coupon::needs_line("<p>{{coupon_code}}</p>", Some("Oi")));
/// ```
pub fn needs_line(html: &str, text: Option<&str>) -> bool {
    !uses_coupon(html) || text.is_some_and(|t| !uses_coupon(t))
}

/// Add the producer's coupon `line` (plain text that shows `{{coupon_code}}`, in the email's
/// language) to each body that does not show the coupon yet: as a paragraph of the HTML
/// (escaped), after a blank line of the text.
///
/// ```
/// let mut html = "<p>Volte</p>".to_string();
/// let mut text = Some("Volte".to_string());
/// funnel_sdk::coupon::add_line(&mut html, text.as_mut(), "Use o cupom {{coupon_code}} & ganhe.");
/// assert_eq!(html, "<p>Volte</p><p>Use o cupom {{coupon_code}} &amp; ganhe.</p>");
/// assert_eq!(text.as_deref(), Some("Volte\n\nUse o cupom {{coupon_code}} & ganhe."));
/// ```
pub fn add_line(html: &mut String, text: Option<&mut String>, line: &str) {
    if !uses_coupon(html) {
        html.push_str("<p>");
        html.push_str(&escape_html(line));
        html.push_str("</p>");
    }
    if let Some(text) = text.filter(|t| !uses_coupon(t)) {
        text.push_str("\n\n");
        text.push_str(line);
    }
}

/// `&`, `<`, `>` and `"` as entities; `{{…}}` passes through untouched.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
