//! Unique coupons (migration 0010): a scope's pool of codes or its pattern, and the one code
//! each lead is given. The static code of a scope stays in [`super::bindings`].
//!
//! A code is given in a transaction of its own, made while the plugin runs
//! ([`Database::assign_unique_coupon`]), not with the event's other writes: once given it is
//! the lead's forever, so a later failure of the same event (a trap, a refused commit) must
//! not hand the code to someone else on the retry — the retry finds it and gets the same
//! one. Two leads never share a code: a pool code is taken with a conditional `UPDATE` of a
//! free row (PostgreSQL: the free row chosen `FOR UPDATE SKIP LOCKED`, so replicas racing for
//! a pool each take a different row without waiting on each other; SQLite: one writer), and
//! `lead_coupons` is unique on (producer, code), which also makes a generated code that
//! collides with one already given fail its insert and be drawn again.

use serde::Serialize;
use sqlx::Row;

use super::{Backend, Database, StoreError, stored_word_keyed};
use crate::domain::TimelineNote;
use crate::domain::coupon::CouponPattern;
use crate::domain::coupon::CouponSource;

/// Most codes one `POST /v1/coupons` may add.
pub const MAX_CODES_PER_REQUEST: usize = 10_000;
/// Most codes a pool may hold, given or not.
pub const MAX_CODES_PER_POOL: i64 = 100_000;
/// Draws of a generated code before giving up (a collision is a one-in-billions event for
/// `{A6}`; five in a row means the pattern's space is nearly used up).
const PATTERN_DRAWS: usize = 5;
/// Rows of one multi-row INSERT of pool codes (5 parameters a row, under PostgreSQL's 65,535).
const INSERT_CHUNK: usize = 1_000;

/// A scope's unique-coupon source and how much of it is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolSummary {
    pub product_id: String,
    pub plan_id: String,
    pub kind: CouponSource,
    pub pattern: Option<String>,
    pub discount_percent: u8,
    /// Pool codes registered (0 for a pattern).
    pub total: i64,
    /// Codes given to leads (pool or generated).
    pub assigned: i64,
    /// Pool codes still free (`null` for a pattern: it does not run out).
    pub left: Option<i64>,
}

/// What adding codes to a pool did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolAdded {
    /// `added` new codes; `already` were in the producer's pools before (left as they were).
    Added { added: usize, already: usize },
    /// The pool would hold more than [`MAX_CODES_PER_POOL`] codes: nothing was added.
    Full { holds: i64 },
}

/// The code a lead was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadCoupon {
    pub code: String,
    pub discount_percent: u8,
    pub source: CouponSource,
    pub product_id: String,
    pub plan_id: String,
    pub assigned_at: i64,
}

/// Why no unique code could be given.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error("the binding's scope has no coupon pool or pattern for product {product:?} plan {plan:?}")]
    NoSource { product: String, plan: String },
    #[error("the coupon pool for product {product:?} plan {plan:?} is used up")]
    UsedUp { product: String, plan: String },
    #[error("no unused code found for pattern {0:?} after {PATTERN_DRAWS} draws")]
    PatternExhausted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AssignError {
    fn from(e: sqlx::Error) -> Self {
        AssignError::Store(e.into())
    }
}

fn percent(value: i64) -> Result<u8, StoreError> {
    u8::try_from(value).map_err(|_| StoreError::Corrupt(format!("discount_percent {value}")))
}

impl Database {
    /// Append `codes` to the pool of a scope (creating it; a pattern the scope had stops being
    /// used), all or nothing. Codes already in any of the producer's pools are left as they
    /// are and counted in `already`, so posting the same list twice adds nothing.
    pub async fn add_pool_codes(
        &self,
        producer_id: &str,
        (product_id, plan_id): (&str, &str),
        discount_percent: u8,
        codes: &[String],
        now: i64,
    ) -> Result<PoolAdded, StoreError> {
        let mut tx = self.pool.begin().await?;
        let holds: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM coupon_codes WHERE producer_id = $1 AND product_id = $2 AND plan_id = $3",
        )
        .bind(producer_id)
        .bind(product_id)
        .bind(plan_id)
        .fetch_one(&mut *tx)
        .await?;
        if holds.saturating_add(codes.len() as i64) > MAX_CODES_PER_POOL {
            tx.rollback().await?;
            return Ok(PoolAdded::Full { holds });
        }
        upsert_source(&mut tx, producer_id, (product_id, plan_id), None, discount_percent, now).await?;
        let mut added = 0;
        for chunk in codes.chunks(INSERT_CHUNK) {
            let mut sql =
                String::from("INSERT INTO coupon_codes (producer_id, product_id, plan_id, code, added_at) VALUES ");
            for i in 0..chunk.len() {
                let b = i * 5;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5));
            }
            sql.push_str(" ON CONFLICT (producer_id, code) DO NOTHING");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for code in chunk {
                query = query.bind(producer_id).bind(product_id).bind(plan_id).bind(code.as_str()).bind(now);
            }
            added += query.execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(PoolAdded::Added { added, already: codes.len() - added })
    }

    /// Make `pattern` the scope's source of unique codes (codes already given stay given).
    pub async fn set_coupon_pattern(
        &self,
        producer_id: &str,
        scope: (&str, &str),
        pattern: &CouponPattern,
        discount_percent: u8,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        upsert_source(&mut tx, producer_id, scope, Some(pattern.as_str()), discount_percent, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The producer's unique-coupon sources with their use, by product and plan.
    pub async fn coupon_pools(&self, producer_id: &str) -> Result<Vec<PoolSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.product_id, s.plan_id, s.pattern, s.discount_percent,
                    (SELECT COUNT(*) FROM coupon_codes c WHERE c.producer_id = s.producer_id
                       AND c.product_id = s.product_id AND c.plan_id = s.plan_id) AS total,
                    (SELECT COUNT(*) FROM coupon_codes c WHERE c.producer_id = s.producer_id
                       AND c.product_id = s.product_id AND c.plan_id = s.plan_id AND c.lead_id IS NOT NULL) AS pool_given,
                    (SELECT COUNT(*) FROM lead_coupons l WHERE l.producer_id = s.producer_id
                       AND l.product_id = s.product_id AND l.plan_id = s.plan_id) AS given
             FROM coupon_sources s WHERE s.producer_id = $1 ORDER BY s.product_id, s.plan_id",
        )
        .bind(producer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let pattern: Option<String> = r.try_get("pattern")?;
                let total: i64 = r.try_get("total")?;
                let pool_given: i64 = r.try_get("pool_given")?;
                Ok(PoolSummary {
                    product_id: r.try_get("product_id")?,
                    plan_id: r.try_get("plan_id")?,
                    kind: if pattern.is_some() { CouponSource::Pattern } else { CouponSource::Pool },
                    left: pattern.is_none().then_some(total - pool_given),
                    pattern,
                    discount_percent: percent(r.try_get("discount_percent")?)?,
                    total,
                    assigned: r.try_get("given")?,
                })
            })
            .collect()
    }

    /// The discount of a scope's unique-coupon source and its pattern, if the scope has one.
    pub async fn coupon_source(
        &self,
        producer_id: &str,
        product_id: &str,
        plan_id: &str,
    ) -> Result<Option<(u8, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT pattern, discount_percent FROM coupon_sources
             WHERE producer_id = $1 AND product_id = $2 AND plan_id = $3",
        )
        .bind(producer_id)
        .bind(product_id)
        .bind(plan_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((percent(r.try_get("discount_percent")?)?, r.try_get("pattern")?))).transpose()
    }

    /// The code the lead was given, if any.
    pub async fn lead_coupon(&self, lead_id: &str) -> Result<Option<LeadCoupon>, StoreError> {
        let row = sqlx::query(
            "SELECT lead_id, code, discount_percent, source, product_id, plan_id, assigned_at FROM lead_coupons
             WHERE lead_id = $1",
        )
        .bind(lead_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| lead_coupon_from_row(&r)).transpose()
    }

    /// Give the lead its unique code for the scope `(product_id, plan_id)`, or the one it
    /// already has; see the module doc for why this commits on its own and cannot give a code
    /// twice.
    pub async fn assign_unique_coupon(
        &self,
        lead_id: &str,
        producer_id: &str,
        (product_id, plan_id): (&str, &str),
        now: i64,
    ) -> Result<LeadCoupon, AssignError> {
        if let Some(given) = self.lead_coupon(lead_id).await? {
            return Ok(given);
        }
        let scope = || (product_id.to_string(), plan_id.to_string());
        let Some((discount, pattern)) = self.coupon_source(producer_id, product_id, plan_id).await? else {
            let (product, plan) = scope();
            return Err(AssignError::NoSource { product, plan });
        };
        let pattern = match pattern.as_deref().map(CouponPattern::parse) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return Err(StoreError::Corrupt(format!("stored coupon pattern: {e}")).into()),
        };
        for _ in 0..PATTERN_DRAWS {
            let mut tx = self.pool.begin().await?;
            let (code, source) = match &pattern {
                Some(p) => (p.generate(), CouponSource::Pattern),
                None => {
                    let lock = match self.backend() {
                        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                        Backend::Sqlite => "",
                    };
                    let taken: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "UPDATE coupon_codes SET lead_id = $1, assigned_at = $2
                         WHERE lead_id IS NULL AND seq = (SELECT seq FROM coupon_codes
                           WHERE producer_id = $3 AND product_id = $4 AND plan_id = $5 AND lead_id IS NULL
                             AND NOT EXISTS (SELECT 1 FROM lead_coupons g
                                             WHERE g.producer_id = $3 AND g.code = coupon_codes.code)
                           ORDER BY seq LIMIT 1{lock})
                         RETURNING code"
                    )))
                    .bind(lead_id)
                    .bind(now)
                    .bind(producer_id)
                    .bind(product_id)
                    .bind(plan_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match taken {
                        Some(code) => (code, CouponSource::Pool),
                        None => {
                            tx.rollback().await?;
                            let (product, plan) = scope();
                            return Err(AssignError::UsedUp { product, plan });
                        }
                    }
                }
            };
            let source_name = source.as_str();
            // No conflict target: either unique key (the lead already has a code; the code is
            // someone else's) turns the insert into nothing, told apart just below.
            let inserted = sqlx::query(
                "INSERT INTO lead_coupons (lead_id, producer_id, product_id, plan_id, code, source, discount_percent, assigned_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(lead_id)
            .bind(producer_id)
            .bind(product_id)
            .bind(plan_id)
            .bind(&code)
            .bind(source_name)
            .bind(i64::from(discount))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                // Given meanwhile by another attempt for this lead: that one is the lead's.
                if let Some(given) = self.lead_coupon(lead_id).await? {
                    return Ok(given);
                }
                // A generated code someone already has (or a pool code registered to another
                // scope that another lead has): draw again.
                continue;
            }
            let given = LeadCoupon {
                code,
                discount_percent: discount,
                source,
                product_id: product_id.to_string(),
                plan_id: plan_id.to_string(),
                assigned_at: now,
            };
            report_assignment(&mut tx, producer_id, lead_id, &given).await?;
            tx.commit().await?;
            return Ok(given);
        }
        Err(AssignError::PatternExhausted(pattern.map(|p| p.as_str().to_string()).unwrap_or_default()))
    }
}

/// Tell the producer (timeline) and the platform (`coupon.assigned` webhook) which code the
/// lead got, in the transaction that gives it: the single place a code's assignment is
/// reported, so a code is reported exactly when it is given, and once.
async fn report_assignment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    producer_id: &str,
    lead_id: &str,
    given: &LeadCoupon,
) -> Result<(), StoreError> {
    let source = given.source;
    let from = source.as_str();
    let data = serde_json::json!({
        "lead_id": lead_id, "code": given.code, "discount_percent": given.discount_percent, "source": from,
        "product_id": given.product_id, "plan_id": given.plan_id, "assigned_at": given.assigned_at,
    });
    super::webhooks::enqueue(
        tx,
        producer_id,
        crate::webhooks::WebhookEvent::CouponAssigned,
        Some(lead_id),
        data,
        given.assigned_at,
    )
    .await?;
    let note =
        TimelineNote::CouponAssigned { code: given.code.clone(), discount_percent: given.discount_percent, source };
    super::timeline::append(tx, lead_id, given.assigned_at, &note).await
}

async fn upsert_source(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    producer_id: &str,
    (product_id, plan_id): (&str, &str),
    pattern: Option<&str>,
    discount_percent: u8,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO coupon_sources (producer_id, product_id, plan_id, pattern, discount_percent, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (producer_id, product_id, plan_id) DO UPDATE SET pattern = excluded.pattern,
         discount_percent = excluded.discount_percent, updated_at = excluded.updated_at",
    )
    .bind(producer_id)
    .bind(product_id)
    .bind(plan_id)
    .bind(pattern)
    .bind(i64::from(discount_percent))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn lead_coupon_from_row(r: &sqlx::any::AnyRow) -> Result<LeadCoupon, StoreError> {
    Ok(LeadCoupon {
        code: r.try_get("code")?,
        discount_percent: percent(r.try_get("discount_percent")?)?,
        source: stored_word_keyed(r, ("lead_coupons", "lead_id"), "source", CouponSource::parse)?,
        product_id: r.try_get("product_id")?,
        plan_id: r.try_get("plan_id")?,
        assigned_at: r.try_get("assigned_at")?,
    })
}
