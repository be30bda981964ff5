//! `POST /v1/coupons` and `GET /v1/coupons`: a product and plan's coupons (coupons exist only
//! at that scope). A body carries exactly one of:
//! - `code`: the scope's static code, the same for every lead (replaces the one before);
//! - `codes`: codes appended to the scope's pool, each given to at most one lead, ever (up to
//!   10,000 a request and 100,000 a pool; codes already registered are left as they are);
//! - `pattern`: codes generated per lead, e.g. `VOLTA-{A6}` (syntax: `domain::coupon`).
//!
//! A scope's unique codes come from its pattern when it has one, else from its pool; posting
//! `codes` makes the pool the source again. `GET` lists the static codes and each pool or
//! pattern with how much of it is used.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::ProducerCaller;
use super::problem::{FieldError, Problem, parse_json};
use crate::domain::coupon::{
    CouponPattern, MAX_CODE_CHARS, MAX_PATTERN_CHARS, PATTERN_SYNTAX, POOL_CODE, STATIC_CODE, pool_code_problem,
    static_code_problem,
};
use crate::domain::text::{NON_BLANK_LINE, required_line_problem};
use crate::store::coupons::{MAX_CODES_PER_POOL, MAX_CODES_PER_REQUEST, PoolAdded};

/// Field errors reported at most for one request (a list of 10,000 bad codes is not echoed).
const MAX_FIELD_ERRORS: usize = 50;

/// The body of `POST /v1/coupons`.
/// Exactly one of `code`, `codes` and `pattern` is given.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["code"]}, {"required": ["codes"]}, {"required": ["pattern"]}]))]
pub(super) struct NewCoupon {
    /// One line, 1 to 200 bytes.
    #[schemars(length(min = 1, max = MAX_ID_BYTES), regex(pattern = NON_BLANK_LINE))]
    product_id: String,
    /// One line, 1 to 200 bytes.
    #[schemars(length(min = 1, max = MAX_ID_BYTES), regex(pattern = NON_BLANK_LINE))]
    plan_id: String,
    #[schemars(range(min = MIN_DISCOUNT, max = MAX_DISCOUNT))]
    discount_percent: i64,
    /// The static code, the same for every lead: 1 to 64 characters, no spaces.
    #[serde(default)]
    #[schemars(with = "String", length(max = MAX_CODE_CHARS), regex(pattern = STATIC_CODE))]
    code: Option<String>,
    /// Codes for the pool (each to one lead ever); 1 to 10,000 a request, each listed once.
    #[serde(default)]
    #[schemars(schema_with = "pool_codes")]
    codes: Option<Vec<String>>,
    /// Codes generated per lead: literals `A-Z a-z 0-9 - _ .` and tokens `{A<n>}` (letters and
    /// digits) / `{D<n>}` (digits), at least 6 random characters, codes at most 64 long.
    #[serde(default)]
    #[schemars(with = "String", length(max = MAX_PATTERN_CHARS), regex(pattern = PATTERN_SYNTAX))]
    pattern: Option<String>,
}

/// The longest product or plan id, in bytes.
const MAX_ID_BYTES: usize = 200;
const MIN_DISCOUNT: i64 = 1;
const MAX_DISCOUNT: i64 = 100;

fn pool_codes(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array", "minItems": 1, "maxItems": MAX_CODES_PER_REQUEST, "uniqueItems": true,
        "items": {"type": "string", "pattern": POOL_CODE},
    })
}

/// Which kind of coupon a body registers, checked.
enum Kind {
    Static(String),
    Pool(Vec<String>),
    Pattern(CouponPattern),
}

fn scope_errors(c: &NewCoupon, errors: &mut Vec<FieldError>) {
    for (path, value) in [("product_id", &c.product_id), ("plan_id", &c.plan_id)] {
        if let Some(message) = required_line_problem(value, MAX_ID_BYTES) {
            errors.push(FieldError { path: path.into(), message });
        }
    }
    if !(MIN_DISCOUNT..=MAX_DISCOUNT).contains(&c.discount_percent) {
        errors.push(FieldError {
            path: "discount_percent".into(),
            message: format!("must be {MIN_DISCOUNT} to {MAX_DISCOUNT} (got {})", c.discount_percent),
        });
    }
}

fn pool_errors(codes: &[String], errors: &mut Vec<FieldError>) {
    if codes.is_empty() || codes.len() > MAX_CODES_PER_REQUEST {
        errors.push(FieldError {
            path: "codes".into(),
            message: format!("give 1 to {MAX_CODES_PER_REQUEST} codes a request (got {})", codes.len()),
        });
        return;
    }
    let mut seen = std::collections::HashMap::with_capacity(codes.len());
    for (i, code) in codes.iter().enumerate() {
        let message = match (pool_code_problem(code), seen.insert(code.as_str(), i)) {
            (Some(problem), _) => problem,
            (None, Some(first)) => format!("{code:?} is listed twice (first at codes[{first}])"),
            (None, None) => continue,
        };
        errors.push(FieldError { path: format!("codes[{i}]"), message });
    }
}

/// Exactly one of `code`, `codes` and `pattern`, each valid; every problem found.
fn check(c: NewCoupon) -> Result<(NewCoupon, Kind), Problem> {
    let mut errors = Vec::new();
    scope_errors(&c, &mut errors);
    let given: Vec<&str> = [("code", c.code.is_some()), ("codes", c.codes.is_some()), ("pattern", c.pattern.is_some())]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
    if given.len() != 1 {
        let path = given.get(1).copied().unwrap_or("code");
        let message = if given.is_empty() {
            "give one of code (static), codes (a pool) or pattern (generated per lead)"
        } else {
            "give only one of code, codes and pattern"
        };
        errors.push(FieldError { path: path.into(), message: message.into() });
    }
    let mut kind = None;
    if let Some(code) = &c.code {
        if let Some(message) = static_code_problem(code) {
            errors.push(FieldError { path: "code".into(), message: message.into() });
        }
        kind = Some(Kind::Static(code.clone()));
    }
    if let Some(codes) = &c.codes {
        pool_errors(codes, &mut errors);
        kind = Some(Kind::Pool(codes.clone()));
    }
    if let Some(pattern) = &c.pattern {
        match CouponPattern::parse(pattern) {
            Ok(p) => kind = Some(Kind::Pattern(p)),
            Err(message) => errors.push(FieldError { path: "pattern".into(), message }),
        }
    }
    match kind {
        Some(kind) if errors.is_empty() => Ok((c, kind)),
        _ => {
            let total = errors.len();
            errors.truncate(MAX_FIELD_ERRORS);
            let detail = if total > MAX_FIELD_ERRORS {
                format!("the coupon is not valid ({total} problems; the first {MAX_FIELD_ERRORS} are listed)")
            } else {
                "the coupon is not valid".to_string()
            };
            Err(Problem::invalid(detail, errors))
        }
    }
}

pub(super) async fn create(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let (c, kind) = check(parse_json(&body)?)?;
    let percent = u8::try_from(c.discount_percent).map_err(Problem::internal)?;
    let scope = (c.product_id.as_str(), c.plan_id.as_str());
    let now = state.clock.now_ms();
    let mut answer = json!({"product_id": c.product_id, "plan_id": c.plan_id, "discount_percent": percent});
    match kind {
        Kind::Static(code) => {
            state.store.put_coupon(&producer, scope.0, scope.1, &code, percent).await?;
            answer["code"] = json!(code);
        }
        Kind::Pool(codes) => match state.store.add_pool_codes(&producer, scope, percent, &codes, now).await? {
            PoolAdded::Full { holds } => {
                return Err(Problem::field(
                    "codes",
                    format!(
                        "the pool holds {holds} codes: {} more would pass its cap of {MAX_CODES_PER_POOL}",
                        codes.len()
                    ),
                ));
            }
            PoolAdded::Added { added, already } => {
                answer["kind"] = json!("pool");
                answer["added"] = json!(added);
                answer["already_registered"] = json!(already);
                if let Some(pool) = pool_of(&state, &producer, scope).await? {
                    answer["total"] = json!(pool.total);
                    answer["assigned"] = json!(pool.assigned);
                    answer["left"] = json!(pool.left);
                }
            }
        },
        Kind::Pattern(pattern) => {
            state.store.set_coupon_pattern(&producer, scope, &pattern, percent, now).await?;
            answer["kind"] = json!("pattern");
            answer["pattern"] = json!(pattern.as_str());
        }
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn pool_of(
    state: &AppState,
    producer: &str,
    (product, plan): (&str, &str),
) -> Result<Option<crate::store::coupons::PoolSummary>, Problem> {
    Ok(state.store.coupon_pools(producer).await?.into_iter().find(|p| p.product_id == product && p.plan_id == plan))
}

/// `GET /v1/coupons`'s documented answer (OpenAPI `responses`).
pub(super) fn list_responses() -> Value {
    let int = json!({"type": "integer"});
    json!({"200": super::plugins::json_answer("Your static codes, and your pools and patterns with their use", json!({
        "type": "object", "required": ["coupons", "pools"], "properties": {
            "coupons": {"type": "array", "items": {"type": "object", "properties": {
                "product_id": {"type": "string"}, "plan_id": {"type": "string"}, "code": {"type": "string"},
                "discount_percent": int}}},
            "pools": {"type": "array", "items": {"type": "object",
                "required": ["product_id", "plan_id", "kind", "discount_percent", "total", "assigned"], "properties": {
                "product_id": {"type": "string"}, "plan_id": {"type": "string"},
                "kind": {"enum": ["pool", "pattern"]}, "pattern": {"type": ["string", "null"]},
                "discount_percent": int,
                "total": {"type": "integer", "description": "pool codes registered (0 for a pattern)"},
                "assigned": {"type": "integer", "description": "codes given to leads"},
                "left": {"type": ["integer", "null"], "description": "pool codes still free; null for a pattern"}}}}}}))})
}

/// `GET /v1/coupons`: `{"coupons": [static codes], "pools": [pools and patterns with use]}`.
pub(super) async fn list(
    State(state): State<AppState>,
    ProducerCaller(producer): ProducerCaller,
) -> Result<Json<Value>, Problem> {
    let statics = state.store.static_coupons(&producer).await?;
    let pools = state.store.coupon_pools(&producer).await?;
    Ok(Json(json!({"coupons": statics, "pools": pools})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: Value) -> NewCoupon {
        let mut base = json!({"product_id": "p", "plan_id": "q", "discount_percent": 10});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).expect("shape")
    }

    fn paths(extra: Value) -> Vec<String> {
        match check(body(extra)) {
            Ok(_) => Vec::new(),
            Err(p) => p.errors.into_iter().map(|e| e.path).collect(),
        }
    }

    #[test]
    fn exactly_one_kind_and_each_code_checked() {
        assert!(paths(json!({"code": "V10"})).is_empty());
        assert!(paths(json!({"codes": ["A1", "A2"]})).is_empty());
        assert!(paths(json!({"pattern": "VOLTA-{A6}"})).is_empty());
        assert_eq!(paths(json!({})), ["code"]);
        assert_eq!(paths(json!({"code": "V", "pattern": "X-{A6}"})), ["pattern"]);
        assert_eq!(paths(json!({"codes": ["A1", "bad code", "A1", ""]})), ["codes[1]", "codes[2]", "codes[3]"]);
        assert_eq!(paths(json!({"codes": []})), ["codes"]);
        assert_eq!(paths(json!({"pattern": "VOLTA"})), ["pattern"]);
        let many: Vec<String> = (0..=MAX_CODES_PER_REQUEST).map(|i| format!("C{i}")).collect();
        assert_eq!(paths(json!({"codes": many})), ["codes"]);
        let bad: Vec<String> = (0..200).map(|i| format!("C {i}")).collect();
        assert_eq!(paths(json!({"codes": bad})).len(), MAX_FIELD_ERRORS);
    }
}
