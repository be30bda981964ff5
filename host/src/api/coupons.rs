//! `POST /v1/coupons {product_id, plan_id, code, discount_percent}`: a coupon for a product and
//! plan (coupons exist only at that scope).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Problem, parse_json};

/// The body of `POST /v1/coupons`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCoupon {
    product_id: String,
    plan_id: String,
    code: String,
    discount_percent: i64,
}

pub async fn create(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let c: NewCoupon = parse_json(&body)?;
    let mut errors = Vec::new();
    for (path, value) in [("product_id", &c.product_id), ("plan_id", &c.plan_id)] {
        if value.trim().is_empty() {
            errors.push(FieldError { path: path.into(), message: "must not be empty".into() });
        } else if let Some(message) = crate::domain::text::single_line_problem(value) {
            errors.push(FieldError { path: path.into(), message });
        } else if value.len() > 200 {
            errors.push(FieldError {
                path: path.into(),
                message: format!("must be at most 200 bytes (got {})", value.len()),
            });
        }
    }
    if c.code.trim().is_empty()
        || c.code.len() > 64
        || c.code.contains(|ch: char| ch.is_whitespace() || ch.is_control())
    {
        errors.push(FieldError { path: "code".into(), message: "1 to 64 characters, no spaces".into() });
    }
    if !(1..=100).contains(&c.discount_percent) {
        errors.push(FieldError {
            path: "discount_percent".into(),
            message: format!("must be 1 to 100 (got {})", c.discount_percent),
        });
    }
    if !errors.is_empty() {
        return Err(Problem::invalid("the coupon is not valid", errors));
    }
    let percent = u8::try_from(c.discount_percent).map_err(Problem::internal)?;
    state.store.put_coupon(&producer, &c.product_id, &c.plan_id, &c.code, percent).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            serde_json::json!({"product_id": c.product_id, "plan_id": c.plan_id, "code": c.code, "discount_percent": percent}),
        ),
    ))
}
