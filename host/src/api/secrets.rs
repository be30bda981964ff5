//! The host's own credentials: the admin token, the platform's bearer token and the platform's
//! HMAC secret. `serve` takes each from its settings or, when unset, from the database,
//! generating it on first start (printed once).
//!
//! The two tokens are stored only as sha256 hashes, like producers' API keys, so a copy of the
//! database does not hand out admin or platform access; requests are checked by hashing what
//! they present. The platform secret is an HMAC key the host must sign and verify with, so it
//! is stored as it is.

use sha2::{Digest, Sha256};

use crate::store::{Database, StoreError, new_token};

/// The sha256 of a token: what is stored and compared, never the token itself.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of a token in hand.
    pub fn of(token: &str) -> Self {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    fn from_hex(stored: &str) -> Option<Self> {
        hex::decode(stored).ok()?.try_into().ok().map(TokenDigest)
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let presented = TokenDigest::of(presented);
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &presented.0[..]).into()
    }
}

impl From<&str> for TokenDigest {
    fn from(token: &str) -> Self {
        TokenDigest::of(token)
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Secrets the API checks requests against.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub admin_token: TokenDigest,
    pub platform_token: TokenDigest,
    pub platform_secret: String,
}

/// What the operator set (`FUNNEL_ADMIN_TOKEN`, …); what is `None` comes from the database.
#[derive(Clone, Debug, Default)]
pub struct GivenSecrets {
    pub admin_token: Option<String>,
    pub platform_token: Option<String>,
    pub platform_secret: Option<String>,
}

/// The secrets in force, and the `(setting, value)` of each one generated now, to show once.
pub async fn load_secrets(
    store: &Database,
    given: GivenSecrets,
) -> Result<(Secrets, Vec<(String, String)>), StoreError> {
    let mut generated = Vec::new();
    let admin_token = token(store, "admin_token", given.admin_token, &mut generated).await?;
    let platform_token = token(store, "platform_token", given.platform_token, &mut generated).await?;
    let platform_secret = match given.platform_secret {
        Some(secret) => secret,
        None => match store.setting("platform_secret").await? {
            Some(secret) => secret,
            None => {
                let secret = store.setting_or_insert("platform_secret", &new_token()).await?;
                generated.push(("platform_secret".to_string(), secret.clone()));
                secret
            }
        },
    };
    Ok((Secrets { admin_token, platform_token, platform_secret }, generated))
}

/// A token given, or stored (as `<name>_sha256`), or generated and stored hashed.
async fn token(
    store: &Database,
    name: &str,
    given: Option<String>,
    generated: &mut Vec<(String, String)>,
) -> Result<TokenDigest, StoreError> {
    if let Some(token) = given {
        return Ok(TokenDigest::of(&token));
    }
    let hashed_key = format!("{name}_sha256");
    if let Some(legacy) = store.setting(name).await? {
        // An older release stored the token itself: keep accepting it, store only its hash.
        let digest = TokenDigest::of(&legacy);
        store.set_setting(&hashed_key, &digest.to_hex()).await?;
        store.delete_setting(name).await?;
        return Ok(digest);
    }
    let parse = |stored: &str| {
        TokenDigest::from_hex(stored)
            .ok_or_else(|| StoreError::Corrupt(format!("setting {hashed_key} is not a sha256 hex digest")))
    };
    if let Some(stored) = store.setting(&hashed_key).await? {
        return parse(&stored);
    }
    let fresh = new_token();
    let digest = TokenDigest::of(&fresh);
    let stored = store.setting_or_insert(&hashed_key, &digest.to_hex()).await?;
    if stored == digest.to_hex() {
        generated.push((name.to_string(), fresh));
        Ok(digest)
    } else {
        // Another replica starting at the same moment generated it first and showed it.
        parse(&stored)
    }
}
