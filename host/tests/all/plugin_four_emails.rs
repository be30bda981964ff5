//! The built-in `four-emails` plugin through the real engine on a virtual clock, each rule of
//! the policy pinned at its boundary.

use serde_json::{Value, json};

use crate::sim_support::{simulate, t, timeline};

const H: i64 = 3600;

fn config(afters: &[&str]) -> Value {
    let emails: Vec<Value> = afters
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"after": a, "subject": format!("{{{{first_name}}}}, reminder {}", i + 1), "html": "<p>Back: <a href=\"{{checkout_url}}\">pay</a></p>"}))
        .collect();
    json!({ "emails": emails })
}

fn scenario(price: Option<i64>, events: Value, until: &str) -> Value {
    let mut lead = json!({"email": "ana@example.com", "name": "Ana Souza"});
    if let Some(cents) = price {
        lead["price"] = json!({"amount_cents": cents, "currency": "BRL"});
    }
    json!({"lead": lead, "events": events, "until": until})
}

#[tokio::test]
async fn four_emails_at_20m_then_every_5h() {
    let out = simulate("four-emails", &config(&["20m", "5h", "5h", "5h"]), &scenario(Some(9700), json!([]), "96h"))
        .await
        .expect("runs");
    assert_eq!(
        timeline(&out),
        [
            t(1200, "email", "email-1"),
            t(1200 + 5 * H, "email", "email-2"),
            t(1200 + 10 * H, "email", "email-3"),
            t(1200 + 15 * H, "email", "email-4")
        ]
    );
    assert_eq!(out[0]["subject"], "Ana, reminder 1", "subjects are rendered");
    assert_eq!(out[0]["coupon"], Value::Null);
}

#[tokio::test]
async fn nineteen_minutes_fifty_nine_is_refused_twenty_accepted() {
    let err = simulate("four-emails", &config(&["19m59s"]), &scenario(Some(9700), json!([]), "1h")).await.unwrap_err();
    assert_eq!(err.to_string(), "config: emails[0].after: the first email must wait at least 20 minutes (got 19m59s)");
    let err =
        simulate("four-emails", &config(&["20m", "4h59m"]), &scenario(Some(9700), json!([]), "1h")).await.unwrap_err();
    assert!(err.to_string().contains("emails[1].after: each email must wait at least 5 hours"), "{err}");
    let err =
        simulate("four-emails", &config(&["20m", "5h", "5h", "5h", "5h"]), &scenario(Some(9700), json!([]), "1h"))
            .await
            .unwrap_err();
    assert_eq!(err.to_string(), "config: emails: at most 4 emails (got 5)");
}

#[tokio::test]
async fn exactly_72h_is_sent_72h_1m_is_disabled() {
    let out = simulate("four-emails", &config(&["20m", "71h40m"]), &scenario(Some(9700), json!([]), "96h"))
        .await
        .expect("runs");
    assert_eq!(timeline(&out), [t(1200, "email", "email-1"), t(72 * H, "email", "email-2")]);
    let out = simulate("four-emails", &config(&["20m", "71h41m"]), &scenario(Some(9700), json!([]), "96h"))
        .await
        .expect("runs");
    assert_eq!(timeline(&out), [t(1200, "email", "email-1")], "the disabled email never goes");
}

#[tokio::test]
async fn only_prices_over_r20_are_eligible() {
    for (price, emails) in [(Some(2000), 0), (Some(2001), 1), (None, 0)] {
        let out = simulate("four-emails", &config(&["20m"]), &scenario(price, json!([]), "2h")).await.expect("runs");
        assert_eq!(out.len(), emails, "price {price:?}");
    }
}

#[tokio::test]
async fn a_purchase_between_emails_stops_the_rest() {
    let events = json!([{"at": "6h", "type": "order.paid"}]);
    let out = simulate("four-emails", &config(&["20m", "5h", "5h", "5h"]), &scenario(Some(9700), events, "96h"))
        .await
        .expect("runs");
    assert_eq!(timeline(&out), [t(1200, "email", "email-1"), t(1200 + 5 * H, "email", "email-2")]);
}

#[tokio::test]
async fn an_unsubscribe_between_emails_stops_the_rest() {
    let events = json!([{"at": "1h", "type": "unsubscribe"}]);
    let out = simulate("four-emails", &config(&["20m", "5h", "5h", "5h"]), &scenario(Some(9700), events, "96h"))
        .await
        .expect("runs");
    assert_eq!(timeline(&out), [t(1200, "email", "email-1")]);
}

#[tokio::test]
async fn coupons_only_with_product_plan_and_a_registered_coupon() {
    let mut cfg = config(&["20m", "5h"]);
    cfg["emails"][1]["coupon"] = json!(true);
    cfg["coupon_line"] = json!("Use o cupom {{coupon_code}} ao finalizar.");
    let mut scn = scenario(Some(9700), json!([]), "24h");
    scn["lead"]["product_id"] = json!("p1");
    scn["lead"]["plan_id"] = json!("q1");
    scn["binding"] =
        json!({"product_id": "p1", "plan_id": "q1", "coupon": {"code": "VOLTA10", "discount_percent": 10}});
    let out = simulate("four-emails", &cfg, &scn).await.expect("runs");
    assert_eq!(out[0]["coupon"], Value::Null);
    assert_eq!(out[1]["coupon"], "VOLTA10", "{out:?}");

    scn["binding"] = json!({"product_id": "p1"});
    let err = simulate("four-emails", &cfg, &scn).await.unwrap_err();
    assert_eq!(err.to_string(), "config: emails[1].coupon: coupons need a binding with a product and a plan");
}
