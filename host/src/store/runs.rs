//! Runs: the one binding (plugin, config, state) that serves a lead for its whole life. A new
//! lead's binding is chosen when it is captured — plan-specific beats product-specific beats
//! producer-wide — and its run started in the same transaction.

use std::collections::HashMap;

use sqlx::Row;

use super::{StoreError, stored_word_keyed};
use crate::domain::{Checkout, RunStatus};

/// Whether the lead's run takes events (it exists and has not ended).
pub(crate) async fn run_is_active(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lead_id: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT lead_id, status FROM runs WHERE lead_id = $1")
        .bind(lead_id)
        .fetch_optional(&mut **tx)
        .await?;
    let status = row.map(|r| stored_word_keyed(&r, ("runs", "lead_id"), "status", RunStatus::parse)).transpose()?;
    Ok(status == Some(RunStatus::Active))
}

/// The binding serving a scope: (id, plugin sha256, config).
type Serving = Option<(String, String, String)>;

/// Bindings already looked up in one ingest transaction, by (producer, product, plan): a batch
/// of a thousand checkouts of one product asks the database once.
#[derive(Default)]
pub(crate) struct BindingCache(HashMap<(String, String, String), Serving>);

/// Choose the binding for a new lead and start its run (the one binding for its whole life).
/// Returns whether a run was started.
pub(crate) async fn start_run(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    cache: &mut BindingCache,
    producer_id: &str,
    lead_id: &str,
    checkout: &Checkout,
    now: i64,
) -> Result<bool, StoreError> {
    let product = checkout.product_id.clone().unwrap_or_default();
    let plan = checkout.plan_id.clone().unwrap_or_default();
    let key = (producer_id.to_string(), product, plan);
    let serving = match cache.0.get(&key) {
        Some(serving) => serving.clone(),
        None => {
            let serving = serving_binding(tx, &key.0, &key.1, &key.2).await?;
            cache.0.insert(key, serving.clone());
            serving
        }
    };
    let Some((binding_id, sha256, config_json)) = serving else { return Ok(false) };
    sqlx::query(
        "INSERT INTO runs (lead_id, binding_id, plugin_sha256, config_json, state, status, updated_at)
         VALUES ($1, $2, $3, $4, NULL, $5, $6)",
    )
    .bind(lead_id)
    .bind(binding_id)
    .bind(sha256)
    .bind(config_json)
    .bind(RunStatus::Active.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// The most specific enabled binding for a scope: (product, plan), (product, any), (any, any).
async fn serving_binding(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    producer_id: &str,
    product: &str,
    plan: &str,
) -> Result<Serving, StoreError> {
    let row = sqlx::query(
        "SELECT id, plugin_sha256, config_json FROM bindings WHERE producer_id = $1 AND enabled = 1 AND (
           (product_id = $2 AND plan_id = $3 AND $2 <> '' AND $3 <> '')
           OR (product_id = $2 AND plan_id = '' AND $2 <> '')
           OR (product_id = '' AND plan_id = ''))
         ORDER BY (CASE WHEN plan_id <> '' THEN 2 WHEN product_id <> '' THEN 1 ELSE 0 END) DESC LIMIT 1",
    )
    .bind(producer_id)
    .bind(product)
    .bind(plan)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("plugin_sha256")?, r.try_get("config_json")?))).transpose()
}
