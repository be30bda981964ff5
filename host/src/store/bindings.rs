//! Bindings (which plugin and config serve which [`Scope`] of a producer's products) and coupons.
//! Which binding serves a new lead is chosen in [`super::runs`]. A scope is kept as two text
//! columns, `''` for "any" ([`scope_columns`], [`scope_from_columns`]); nothing outside the
//! store sees that spelling.

use serde::Serialize;
use sqlx::Row;

use super::{Database, StoreError, new_id};
use crate::domain::{Scope, SendWindow};

/// A stored binding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub id: String,
    pub producer_id: String,
    /// Shown as `product_id` and `plan_id`, `null` for "any".
    #[serde(flatten)]
    pub scope: Scope,
    pub plugin: String,
    pub plugin_sha256: String,
    pub config: serde_json::Value,
    pub enabled: bool,
    /// When its recovery messages may go out (none: any time).
    pub send_window: Option<SendWindow>,
}

/// A binding to create or replace (the scope is the key).
#[derive(Clone, Copy, Debug)]
pub struct NewBinding<'a> {
    pub producer_id: &'a str,
    pub scope: &'a Scope,
    pub plugin: &'a str,
    pub plugin_sha256: &'a str,
    pub config: &'a serde_json::Value,
    pub enabled: bool,
    pub send_window: Option<&'a SendWindow>,
}

/// A static coupon of a product and plan, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaticCoupon {
    pub product_id: String,
    pub plan_id: String,
    pub code: String,
    pub discount_percent: u8,
}

/// A coupon for a product and plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CouponRow {
    pub code: String,
    pub discount_percent: u8,
}

/// A scope as the `bindings` and `coupons` tables keep it: `''` for "any".
pub(crate) fn scope_columns(scope: &Scope) -> (&str, &str) {
    (scope.product_id().unwrap_or(""), scope.plan_id().unwrap_or(""))
}

/// The scope of stored columns; a plan without its product is an error naming the row (of
/// `table`, the binding `row`).
pub(crate) fn scope_from_columns(
    (table, row): (&'static str, &str),
    product: String,
    plan: String,
) -> Result<Scope, StoreError> {
    match (product.is_empty(), plan.is_empty()) {
        (true, true) => Ok(Scope::Producer),
        (false, true) => Ok(Scope::Product(product)),
        (false, false) => Ok(Scope::ProductPlan(product, plan)),
        (true, false) => Err(StoreError::UnknownValue {
            table,
            row: row.to_string(),
            column: "scope",
            value: format!("plan {plan} without a product"),
        }),
    }
}

fn binding_from_row(row: &sqlx::any::AnyRow) -> Result<Binding, StoreError> {
    let id: String = row.try_get("id")?;
    let scope = scope_from_columns(("bindings", &id), row.try_get("product_id")?, row.try_get("plan_id")?)?;
    let config: String = row.try_get("config_json")?;
    Ok(Binding {
        id,
        producer_id: row.try_get("producer_id")?,
        scope,
        plugin: row.try_get("plugin_name")?,
        plugin_sha256: row.try_get("plugin_sha256")?,
        config: serde_json::from_str(&config).map_err(|e| StoreError::Corrupt(format!("binding config: {e}")))?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        send_window: window_from_column(row.try_get("send_window_json")?)?,
    })
}

/// A stored window (JSON of [`SendWindow`]); one that no longer parses is corrupt, never ignored.
pub(crate) fn window_from_column(json: Option<String>) -> Result<Option<SendWindow>, StoreError> {
    json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("send window {j:?}: {e}"))))
        .transpose()
}

/// A window as its column holds it.
pub(crate) fn window_to_column(window: Option<&SendWindow>) -> Option<String> {
    window.map(|w| serde_json::to_string(w).unwrap_or_default())
}

impl Database {
    /// Create or replace the binding of a scope; returns it.
    pub async fn put_binding(&self, binding: &NewBinding<'_>, now: i64) -> Result<Binding, StoreError> {
        let NewBinding { producer_id, scope, plugin, plugin_sha256, config, enabled, send_window } = *binding;
        let (product_id, plan_id) = scope_columns(scope);
        sqlx::query(
            "INSERT INTO bindings (id, producer_id, product_id, plan_id, plugin_name, plugin_sha256, config_json, enabled, updated_at,
             send_window_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (producer_id, product_id, plan_id) DO UPDATE SET plugin_name = excluded.plugin_name,
             plugin_sha256 = excluded.plugin_sha256, config_json = excluded.config_json, enabled = excluded.enabled,
             updated_at = excluded.updated_at, send_window_json = excluded.send_window_json",
        )
        .bind(new_id())
        .bind(producer_id)
        .bind(product_id)
        .bind(plan_id)
        .bind(plugin)
        .bind(plugin_sha256)
        .bind(config.to_string())
        .bind(i64::from(enabled))
        .bind(now)
        .bind(window_to_column(send_window))
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT * FROM bindings WHERE producer_id = $1 AND product_id = $2 AND plan_id = $3")
            .bind(producer_id)
            .bind(product_id)
            .bind(plan_id)
            .fetch_one(&self.pool)
            .await?;
        binding_from_row(&row)
    }

    /// The components enabled bindings use (sha256s, each once), for warming them at start.
    pub async fn bound_plugin_shas(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT DISTINCT plugin_sha256 FROM bindings WHERE enabled <> 0 ORDER BY plugin_sha256")
            .fetch_all(&self.read)
            .await?)
    }

    /// All bindings of a producer.
    pub async fn bindings(&self, producer_id: &str) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query("SELECT * FROM bindings WHERE producer_id = $1 ORDER BY product_id, plan_id")
            .bind(producer_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(binding_from_row).collect()
    }

    /// Register (or replace) the coupon of a product and plan.
    pub async fn put_coupon(
        &self,
        producer_id: &str,
        product_id: &str,
        plan_id: &str,
        code: &str,
        discount_percent: u8,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO coupons (producer_id, product_id, plan_id, code, discount_percent) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (producer_id, product_id, plan_id) DO UPDATE SET code = excluded.code,
             discount_percent = excluded.discount_percent",
        )
        .bind(producer_id)
        .bind(product_id)
        .bind(plan_id)
        .bind(code)
        .bind(i64::from(discount_percent))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The producer's static coupons, by product and plan.
    pub async fn static_coupons(&self, producer_id: &str) -> Result<Vec<StaticCoupon>, StoreError> {
        let rows = sqlx::query(
            "SELECT product_id, plan_id, code, discount_percent FROM coupons WHERE producer_id = $1
             ORDER BY product_id, plan_id",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StaticCoupon {
                    product_id: r.try_get("product_id")?,
                    plan_id: r.try_get("plan_id")?,
                    code: r.try_get("code")?,
                    discount_percent: u8::try_from(r.try_get::<i64, _>("discount_percent")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The static coupon of a scope (coupons live at a product-and-plan scope only).
    pub async fn coupon(&self, producer_id: &str, scope: &Scope) -> Result<Option<CouponRow>, StoreError> {
        let Some((product, plan)) = scope.product_plan() else { return Ok(None) };
        let row = sqlx::query(
            "SELECT code, discount_percent FROM coupons WHERE producer_id = $1 AND product_id = $2 AND plan_id = $3",
        )
        .bind(producer_id)
        .bind(product)
        .bind(plan)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CouponRow {
                code: r.try_get("code")?,
                discount_percent: u8::try_from(r.try_get::<i64, _>("discount_percent")?).unwrap_or(0),
            })
        })
        .transpose()
    }
}
