//! Email addresses.

/// An email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<EmailAddress, String> {
        Ok(EmailAddress(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
