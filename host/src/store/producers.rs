//! Producers (merchants) and their API keys, stored as sha256 hashes: a key is shown once.

use sha2::{Digest, Sha256};

use super::{Database, StoreError, new_id, new_token};

/// A producer just created, with the key to show once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProducer {
    pub id: String,
    pub api_key: String,
}

/// Hash of an API key as stored.
pub(crate) fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Database {
    /// Create a producer and its API key.
    pub async fn create_producer(&self, name: &str, now: i64) -> Result<NewProducer, StoreError> {
        let id = new_id();
        let api_key = format!("fk_{}", new_token());
        sqlx::query("INSERT INTO producers (id, name, api_key_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(name)
            .bind(hash_key(&api_key))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(NewProducer { id, api_key })
    }

    /// The producer an API key belongs to.
    pub async fn producer_by_key(&self, api_key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM producers WHERE api_key_hash = $1")
            .bind(hash_key(api_key))
            .fetch_optional(&self.pool)
            .await?)
    }
}
