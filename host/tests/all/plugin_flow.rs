//! The built-in `flow` plugin running the reference GetALL funnel through the real engine on a
//! virtual clock, on every path.

use funnel_host::domain::TimelineKind;
use serde_json::{Value, json};

use crate::sim_support::{simulate, t, timeline};

fn reference() -> Value {
    serde_json::from_str(include_str!("../../../examples/flows/getall-abandoned-cart.json")).expect("example parses")
}

fn scenario(events: Value) -> Value {
    json!({"lead": {"email": "jan@example.com", "name": "Jan Kowalski", "phone": "+48600100200",
                    "price": {"amount_cents": 19900, "currency": "PLN"}},
           "events": events, "until": "4d"})
}

const WAIT_10M: i64 = 600;
const DAY: i64 = 86_400;
const HOUR: i64 = 3600;

#[tokio::test]
async fn buys_during_the_first_wait_gets_thanks_at_once_and_no_reminder() {
    let out =
        simulate("flow", &reference(), &scenario(json!([{"at": "5m", "type": "order.paid"}]))).await.expect("runs");
    assert_eq!(timeline(&out), [t(300, "email", "thanks"), t(300, "sms", "thanks")]);
    assert_eq!(out[0]["subject"], "Thank you for your purchase, Jan");
    assert_eq!(out[1]["body"], "Thanks, Jan! Your order is confirmed.");
}

#[tokio::test]
async fn buys_after_the_first_email() {
    let out =
        simulate("flow", &reference(), &scenario(json!([{"at": "2h", "type": "order.paid"}]))).await.expect("runs");
    assert_eq!(
        timeline(&out),
        [t(WAIT_10M, "email", "no_payment"), t(2 * HOUR, "email", "thanks"), t(2 * HOUR, "sms", "thanks")]
    );
}

#[tokio::test]
async fn clicks_but_never_buys() {
    let out = simulate("flow", &reference(), &scenario(json!([{"at": "1h", "type": "click", "message": 1}])))
        .await
        .expect("runs");
    assert_eq!(
        timeline(&out),
        [t(WAIT_10M, "email", "no_payment"), t(WAIT_10M + DAY + HOUR, "list_add", "inactive")],
        "a click skips the second reminder"
    );
}

#[tokio::test]
async fn never_clicks_nor_buys() {
    let out = simulate("flow", &reference(), &scenario(json!([]))).await.expect("runs");
    assert_eq!(
        timeline(&out),
        [
            t(WAIT_10M, "email", "no_payment"),
            t(WAIT_10M + DAY, "email", "problems"),
            t(WAIT_10M + DAY + HOUR, "list_add", "inactive")
        ]
    );
}

#[tokio::test]
async fn unsubscribes() {
    let out =
        simulate("flow", &reference(), &scenario(json!([{"at": "1h", "type": "unsubscribe"}]))).await.expect("runs");
    assert_eq!(timeline(&out), [t(WAIT_10M, "email", "no_payment")]);
}

#[tokio::test]
async fn the_same_scenario_twice_prints_the_same() {
    let a = simulate("flow", &reference(), &scenario(json!([{"at": "1h", "type": "click", "message": 1}])))
        .await
        .expect("runs");
    let b = simulate("flow", &reference(), &scenario(json!([{"at": "1h", "type": "click", "message": 1}])))
        .await
        .expect("runs");
    assert_eq!(a, b);
}

#[tokio::test]
async fn config_errors_come_back_with_paths() {
    let mut bad = reference();
    bad["steps"]["clicked"]["if"] = json!({"clicked": "nope"});
    let err = simulate("flow", &bad, &scenario(json!([]))).await.unwrap_err();
    assert_eq!(err.to_string(), r#"config: steps.clicked.if.clicked: "nope" is not an email step"#);
}

crate::db::on_both!(a_lead_gets_messages_from_one_binding_only);
async fn a_lead_gets_messages_from_one_binding_only(db: crate::db::Db) {
    use funnel_host::domain::PlatformEventType;

    use crate::harness::{Harness, T0, lead_id};
    let (_db, store) = crate::db::TestDb::with_store(db).await;
    let h = Harness::new(store, T0).await;
    let four = json!({"emails": [{"after": "20m", "subject": "Volte!", "html": "<p>{{checkout_url}}</p>"}]});
    h.bind_builtin("four-emails", &four, None, None).await;
    h.bind_builtin("flow", &reference(), Some("p1"), None).await;
    let flow_lead = lead_id(&h.post("a", PlatformEventType::CheckoutUpdated, "c1", Some("p1")).await);
    let four_lead = lead_id(&h.post("b", PlatformEventType::CheckoutUpdated, "c2", None).await);
    for minute in [10, 20, 30] {
        h.at(minute * 60_000).await;
    }
    let tags = |entries: Vec<funnel_host::store::timeline::TimelineEntry>| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.kind() == TimelineKind::Email)
            .map(|e| {
                serde_json::from_str::<Value>(&e.detail()).expect("detail")["tag"].as_str().unwrap_or("").to_string()
            })
            .collect()
    };
    assert_eq!(tags(h.timeline(&flow_lead).await), ["no_payment"], "{db:?}: only flow serves p1");
    assert_eq!(tags(h.timeline(&four_lead).await), ["email-1"], "{db:?}: only four-emails serves the rest");
}
