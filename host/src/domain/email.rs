//! [`EmailAddress`]: a bare address (`ana@example.com`), normalized once where it enters —
//! trimmed and lowercased with Unicode's rules in Rust, never by the database (SQLite's
//! `LOWER()` folds ASCII only, so `ÉLISE@…` and `élise@…` were two people to it) — so every
//! comparison (erasure, suppression, unsubscribe, lists) is a plain equality of normalized
//! values. Display-name and comment forms (`x <victim@example.com>`) are refused: they would
//! slip past a suppression of `victim@example.com` and still reach the victim.

use std::fmt;

/// A valid, normalized email address. It can only be built by [`EmailAddress::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a string is not an email address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a bare email address like ana@example.com: {why}")]
pub struct EmailError {
    value: String,
    why: &'static str,
}

/// The longest address SMTP carries (RFC 5321's path limit less the brackets).
pub(crate) const MAX_BYTES: usize = 254;
/// The longest local part (RFC 5321).
const MAX_LOCAL_BYTES: usize = 64;

impl EmailAddress {
    /// Check and normalize `raw`: surrounding whitespace trimmed, lowercased, one `@` between
    /// a local part and a dotted domain, no spaces, no control characters and none of the
    /// characters of display names, comments or quoting (`<>()[]",;:\`).
    pub fn parse(raw: &str) -> Result<EmailAddress, EmailError> {
        let fail = |why| Err(EmailError { value: raw.chars().take(300).collect(), why });
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() || normalized.len() > MAX_BYTES {
            return fail("it must be 3 to 254 bytes");
        }
        if normalized.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return fail("it must not contain spaces or control characters");
        }
        if normalized.contains(['<', '>', '(', ')', '[', ']', '"', ',', ';', ':', '\\']) {
            return fail("send the address alone, without a name, comment or quotes");
        }
        let Some((local, domain)) = normalized.split_once('@') else { return fail("it has no @") };
        if domain.contains('@') {
            return fail("it has more than one @");
        }
        if local.is_empty() || local.len() > MAX_LOCAL_BYTES {
            return fail("the part before @ must be 1 to 64 bytes");
        }
        let labels_ok = domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return fail("the domain must be a name like example.com");
        }
        Ok(EmailAddress(normalized))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailError;
    fn try_from(raw: String) -> Result<Self, EmailError> {
        EmailAddress::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(email: EmailAddress) -> String {
        email.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn normalizes_once() {
        assert_eq!(EmailAddress::parse(" ÉLISE@Example.COM\t").expect("valid").as_str(), "élise@example.com");
        assert_eq!(EmailAddress::parse("a.b+tag@sub.example.com").expect("valid").as_str(), "a.b+tag@sub.example.com");
    }

    #[test]
    fn refuses_display_names_and_junk() {
        for bad in [
            "x<victim@example.com>",
            "Victim <v@example.com>",
            "v@example.com (me)",
            "\"a b\"@example.com",
            "a@b@example.com",
            "a@example",
            "a@.example.com",
            "@example.com",
            "a@-x.com",
            "a\u{0}@example.com",
            "",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
