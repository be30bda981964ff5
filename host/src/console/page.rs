//! What every console page shares: the frame around it ([`Chrome`]: language, strings, the
//! signed-in producer, the CSRF token for the sign-out form, which tab is current), rendering
//! a template into a response with the console's security headers, the error page, and how
//! dates and money are written.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::i18n::{Lang, Strings};
use super::session::Signed;

/// The navigation tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tab {
    None,
    Leads,
    Strategy,
    Simulate,
    Plugins,
    Stats,
    Webhooks,
}

/// The frame of a page.
pub(crate) struct Chrome {
    pub lang: Lang,
    pub t: &'static Strings,
    /// Signed-in producer's name; `None` on the sign-in and error pages (no navigation).
    pub producer: Option<String>,
    pub csrf: String,
    pub tab: Tab,
    pub title: String,
}

impl Chrome {
    pub(crate) fn signed(signed: &Signed, tab: Tab, title: impl Into<String>) -> Chrome {
        Chrome {
            lang: signed.lang,
            t: signed.lang.strings(),
            producer: Some(signed.session.producer_name.clone()),
            csrf: signed.session.csrf.clone(),
            tab,
            title: title.into(),
        }
    }

    pub(crate) fn anonymous(lang: Lang, title: impl Into<String>) -> Chrome {
        Chrome { lang, t: lang.strings(), producer: None, csrf: String::new(), tab: Tab::None, title: title.into() }
    }

    /// `aria-current` for a navigation link.
    pub(crate) fn current(&self, tab: Tab) -> &'static str {
        if self.tab == tab { "page" } else { "false" }
    }

    pub(crate) fn lang_tag(&self) -> &'static str {
        self.lang.tag()
    }
}

/// The console's own policy: scripts, styles and frames only from itself, no plugins, never
/// framed by another site. Email previews have a stricter one of their own.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Headers every console page carries.
pub(crate) fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages show a producer's data: never kept by a shared cache or the back button's disk cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Render a template as an HTML response with `status`.
pub(crate) fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
            secure_headers(&mut response);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be drawn; it is logged").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    message: String,
}

fn error_title(t: &Strings, status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => t.not_found_title,
        StatusCode::FORBIDDEN => t.refused_title,
        _ => t.error_title,
    }
}

/// A page that says what went wrong and links back.
pub(crate) fn error_page(lang: Lang, status: StatusCode, message: String) -> Response {
    let c = Chrome::anonymous(lang, error_title(lang.strings(), status));
    render(status, &ErrorPage { c, message })
}

/// The same, inside the signed-in frame (navigation kept).
pub(crate) fn signed_error_page(signed: &Signed, tab: Tab, status: StatusCode, message: String) -> Response {
    let c = Chrome::signed(signed, tab, error_title(signed.lang.strings(), status));
    render(status, &ErrorPage { c, message })
}

/// `2026-01-01 10:00 UTC`, or empty for a time out of range.
pub(crate) fn datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

/// `2026-01-01 10:00:05`, for timelines.
pub(crate) fn datetime_s(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// An amount in a currency as the language writes it: `R$ 97,00` in Portuguese, `R$97.00` in
/// English; unknown currencies by their code.
pub(crate) fn money(lang: Lang, cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let (units, fraction) = (abs / 100, abs % 100);
    let (thousands, decimal) = match lang {
        Lang::PtBr => ('.', ','),
        Lang::En => (',', '.'),
    };
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(thousands);
        }
        grouped.push(d);
    }
    let symbol = match currency {
        "BRL" => "R$",
        "USD" => "US$",
        "EUR" => "€",
        "PLN" => "zł",
        other => other,
    };
    let space = if lang == Lang::PtBr || symbol.len() > 3 || symbol == currency { " " } else { "" };
    format!("{sign}{symbol}{space}{grouped}{decimal}{fraction:02}")
}

/// `3d 4h`, `5h 20m`, `20m`, `45s`: a duration in seconds, short.
pub(crate) fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() { "0s".into() } else { parts.into_iter().take(3).collect::<Vec<_>>().join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_each_language_writes_it() {
        assert_eq!(money(Lang::PtBr, 12_345_678, "BRL"), "R$ 123.456,78");
        assert_eq!(money(Lang::En, 9700, "BRL"), "R$97.00");
        assert_eq!(money(Lang::En, 5, "XYZ"), "XYZ 0.05");
        assert_eq!(money(Lang::En, -150, "USD"), "-US$1.50");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(1200), "20m");
        assert_eq!(duration(5 * 3600 + 1200 + 7), "5h 20m 7s");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(86_400 + 5 * 3600 + 1200), "1d 5h 20m");
    }
}
