-- Migration 0010, PostgreSQL: unique coupons and A/B splits (issue 16).
-- `coupon_sources`: a scope's unique-coupon source, besides its static code in `coupons`: a
-- pattern (generated codes) when `pattern` is set, else the scope's pool in `coupon_codes`.
-- `coupon_codes`: pool codes; `lead_id` is set once, when the code is given (never reset), so a
-- code goes to one lead ever. `lead_coupons`: the code each lead got (one per lead, unique per
-- producer). `lead_variants`: the variant of each split step a lead was put in, recorded once.
CREATE TABLE coupon_sources (
    producer_id TEXT NOT NULL, product_id TEXT NOT NULL, plan_id TEXT NOT NULL, pattern TEXT,
    discount_percent BIGINT NOT NULL, updated_at BIGINT NOT NULL,
    PRIMARY KEY (producer_id, product_id, plan_id));
CREATE TABLE coupon_codes (
    seq BIGSERIAL PRIMARY KEY, producer_id TEXT NOT NULL, product_id TEXT NOT NULL,
    plan_id TEXT NOT NULL, code TEXT NOT NULL, lead_id TEXT, assigned_at BIGINT, added_at BIGINT NOT NULL,
    UNIQUE (producer_id, code));
-- The next free code of a pool, oldest first, without stepping over the given ones.
CREATE INDEX coupon_codes_free ON coupon_codes (producer_id, product_id, plan_id, seq) WHERE lead_id IS NULL;
CREATE TABLE lead_coupons (
    lead_id TEXT PRIMARY KEY, producer_id TEXT NOT NULL, product_id TEXT NOT NULL, plan_id TEXT NOT NULL,
    code TEXT NOT NULL, source TEXT NOT NULL, discount_percent BIGINT NOT NULL, assigned_at BIGINT NOT NULL,
    UNIQUE (producer_id, code));
CREATE TABLE lead_variants (
    lead_id TEXT NOT NULL, step TEXT NOT NULL, variant TEXT NOT NULL, producer_id TEXT NOT NULL,
    assigned_at BIGINT NOT NULL, PRIMARY KEY (lead_id, step));
CREATE INDEX lead_variants_producer ON lead_variants (producer_id, step, variant);
