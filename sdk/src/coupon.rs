//! The coupon convention shared by strategies: the host renders `{{coupon_code}}` to the
//! binding's coupon and reports a message as carrying the coupon when a template uses it. A
//! coupon exists only on a binding that names a product and a plan with one registered.

use crate::BindingContext;

/// The line added to an HTML body that should carry the coupon but does not mention it.
pub const LINE_HTML: &str = "<p>Use the coupon <strong>{{coupon_code}}</strong> at checkout.</p>";
/// The same for a plain-text body (appended after a blank line).
pub const LINE_TEXT: &str = "Use the coupon {{coupon_code}} at checkout.";

/// Whether a template uses the coupon: the same test as the host's, so "carries the coupon"
/// means the same thing on both sides.
pub fn uses_coupon(template: &str) -> bool {
    template.contains("coupon_code")
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

/// Add the coupon line to each body that does not use the coupon yet.
///
/// ```
/// let mut html = "<p>Back</p>".to_string();
/// let mut text = Some("Back".to_string());
/// funnel_sdk::coupon::add_line(&mut html, text.as_mut());
/// assert!(html.ends_with(funnel_sdk::coupon::LINE_HTML));
/// assert_eq!(text.as_deref(), Some("Back\n\nUse the coupon {{coupon_code}} at checkout."));
/// ```
pub fn add_line(html: &mut String, text: Option<&mut String>) {
    if !uses_coupon(html) {
        html.push_str(LINE_HTML);
    }
    if let Some(text) = text.filter(|t| !uses_coupon(t)) {
        text.push_str("\n\n");
        text.push_str(LINE_TEXT);
    }
}
