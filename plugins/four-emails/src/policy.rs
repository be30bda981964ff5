//! The policy's numbers and the pure rules built on them alone: the 20-minute / 5-hour /
//! 72-hour timing, price eligibility, message tags and how amounts and offsets read. What
//! depends on a config (when each email goes out, which are enabled, the email as sent)
//! lives beside the config in [`crate::config`].

use funnel_sdk::{Duration, Money};

/// The first email waits at least this long after capture.
pub const FIRST_MIN: Duration = Duration::from_mins(20);
/// Each next email waits at least this long after the previous one.
pub const GAP_MIN: Duration = Duration::from_hours(5);
/// Every email must go out within this window after capture (exactly 72 h is inside).
pub const WINDOW: Duration = Duration::from_hours(72);
/// At most this many emails.
pub const MAX_EMAILS: usize = 4;
/// Only carts priced strictly over this many cents, unless the config says otherwise.
pub const DEFAULT_MIN_PRICE_CENTS: i64 = 2000;

pub use funnel_sdk::coupon::uses_coupon;

/// The tag of email `index` (0-based): `email-1` … `email-4`. A disabled email keeps its
/// number, so stats line up with the config.
pub fn tag(index: usize) -> String {
    format!("email-{}", index + 1)
}

/// The 0-based index back from a tag; `None` for anything this plugin did not make.
pub fn index_of_tag(tag: &str) -> Option<usize> {
    let digits = tag.strip_prefix("email-")?;
    // `parse` accepts `+1`; only plain digits are ours.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<usize>().ok()?.checked_sub(1)
}

/// Whether a cart priced `price_cents` is eligible: strictly over the minimum; no price, no.
/// Other currencies are compared by their own cents against the same threshold.
pub fn eligible(price_cents: Option<i64>, min_price_cents: i64) -> bool {
    price_cents.is_some_and(|p| p > min_price_cents)
}

/// Why a lead is not eligible (for the timeline), or `None` when it is.
pub fn ineligibility(price: Option<&Money>, min_price_cents: i64) -> Option<String> {
    match price {
        None => Some("not eligible: the checkout sent no price".to_string()),
        Some(p) if !eligible(Some(p.amount_cents), min_price_cents) => Some(format!(
            "not eligible: price {} is not over {} (min_price_cents {min_price_cents})",
            money(p.amount_cents, &p.currency),
            money(min_price_cents, &p.currency)
        )),
        Some(_) => None,
    }
}

/// `R$ 20,00` for reais, `USD 20.00` otherwise.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (units, rest) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
    if currency.eq_ignore_ascii_case("BRL") {
        format!("{sign}R$ {units},{rest:02}")
    } else {
        format!("{sign}{currency} {units}.{rest:02}")
    }
}

/// An offset from capture in hours, the unit of the 72-hour rule (`74h`, `72h1m`, `5h20m`),
/// rather than [`Duration`]'s days (`3d2h`).
pub fn hours(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brl(cents: i64) -> Money {
        Money { amount_cents: cents, currency: "BRL".into() }
    }

    #[test]
    fn tags_round_trip_and_foreign_tags_are_not_ours() {
        assert_eq!(tag(0), "email-1");
        assert_eq!(tag(3), "email-4");
        for i in 0..4 {
            assert_eq!(index_of_tag(&tag(i)), Some(i));
        }
        for foreign in ["email-0", "email-", "email-+1", "email--1", "other", "Email-1", "email-1x", ""] {
            assert_eq!(index_of_tag(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn price_must_be_strictly_over_the_minimum() {
        assert!(!eligible(Some(2000), 2000), "exactly R$ 20,00 is not over it");
        assert!(eligible(Some(2001), 2000));
        assert!(!eligible(None, 2000), "no price, not eligible");
        assert!(!eligible(Some(0), 0));
        assert!(eligible(Some(1), 0));
    }

    #[test]
    fn ineligibility_says_why_in_the_leads_currency() {
        assert_eq!(
            ineligibility(Some(&brl(2000)), 2000).as_deref(),
            Some("not eligible: price R$ 20,00 is not over R$ 20,00 (min_price_cents 2000)")
        );
        assert_eq!(ineligibility(None, 2000).as_deref(), Some("not eligible: the checkout sent no price"));
        assert_eq!(ineligibility(Some(&brl(2001)), 2000), None);
        let usd = Money { amount_cents: 1999, currency: "USD".into() };
        assert_eq!(
            ineligibility(Some(&usd), 2000).as_deref(),
            Some("not eligible: price USD 19.99 is not over USD 20.00 (min_price_cents 2000)"),
            "other currencies: their own cents against the same threshold"
        );
        assert_eq!(money(-5, "BRL"), "-R$ 0,05");
    }

    #[test]
    fn offsets_read_in_hours() {
        assert_eq!(hours(Duration::from_mins(20)), "20m");
        assert_eq!(hours(Duration::from_mins(320)), "5h20m");
        assert_eq!(hours(Duration::from_hours(74)), "74h");
        assert_eq!(hours(Duration::from_mins(72 * 60 + 1)), "72h1m");
        assert_eq!(hours(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(hours(Duration::default()), "0s");
    }
}
