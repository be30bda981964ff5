//! Components built against an earlier `funnel:plugin` contract keep running unchanged. The
//! fixtures in `host/tests/fixtures/plugins-0.1.0/` are the built-in plugins exactly as the 0.1.0
//! release built them; each must give the same lines as today's build of the same plugin.

use funnel_host::sim::PluginSource;
use serde_json::{Value, json};

use crate::sim_support::{simulate, simulate_source};

const FOUR_EMAILS_0_1: &[u8] = include_bytes!("../fixtures/plugins-0.1.0/four_emails.wasm");
const FLOW_0_1: &[u8] = include_bytes!("../fixtures/plugins-0.1.0/flow.wasm");

fn imports(component: &[u8], name: &str) -> bool {
    component.windows(name.len()).any(|w| w == name.as_bytes())
}

#[test]
fn the_fixtures_are_built_against_0_1_0_and_the_builtins_against_0_2_0() {
    // Without this, the tests below could compare today's plugin with itself.
    for fixture in [FOUR_EMAILS_0_1, FLOW_0_1] {
        assert!(imports(fixture, "funnel:plugin/host@0.1.0"));
        assert!(!imports(fixture, "funnel:plugin/host@0.2.0"));
    }
    for name in ["four-emails", "flow"] {
        let builtin = funnel_host::guests::builtin(name).expect("built in");
        assert!(imports(builtin, "funnel:plugin/host@0.2.0"), "{name}");
    }
}

#[tokio::test]
async fn a_0_1_0_four_emails_sends_what_todays_sends_coupon_included() {
    let config = json!({
        "emails": [
            {"after": "20m", "subject": "{{first_name}}, your cart", "html": "<p><a href=\"{{checkout_url}}\">pay</a></p>"},
            {"after": "5h", "subject": "Still there?", "html": "<p>{{product}}</p>", "coupon": true},
            {"after": "5h", "subject": "Last call", "html": "<p>bye</p>"}
        ],
        "coupon_line": "Use {{coupon_code}}."
    });
    let scenario = json!({
        "lead": {"email": "ana@example.com", "name": "Ana Souza", "product_id": "p1", "plan_id": "q1",
                 "price": {"amount_cents": 9700, "currency": "BRL"}},
        "binding": {"product_id": "p1", "plan_id": "q1", "coupon": {"code": "VOLTA10", "discount_percent": 10}},
        "events": [{"at": "12h", "type": "order.paid"}],
        "until": "96h"
    });
    same_lines("four-emails", FOUR_EMAILS_0_1, &config, &scenario).await;
}

#[tokio::test]
async fn a_0_1_0_flow_runs_the_reference_funnel_on_every_capability() {
    let config: Value =
        serde_json::from_str(include_str!("../../../examples/flows/getall-abandoned-cart.json")).expect("parses");
    let lead = json!({"email": "jan@example.com", "name": "Jan Kowalski", "phone": "+48600100200",
                      "price": {"amount_cents": 19900, "currency": "PLN"}});
    for events in
        [json!([]), json!([{"at": "1h", "type": "click", "message": 1}]), json!([{"at": "2h", "type": "order.paid"}])]
    {
        let scenario = json!({"lead": lead, "events": events, "until": "4d"});
        same_lines("flow", FLOW_0_1, &config, &scenario).await;
    }
}

async fn same_lines(builtin: &str, old: &[u8], config: &Value, scenario: &Value) {
    let today = simulate(builtin, config, scenario).await.expect("today's plugin runs");
    let then = simulate_source(PluginSource::Component(old.to_vec()), config, scenario).await.expect("0.1.0 runs");
    assert!(!today.is_empty(), "the scenario sends something");
    assert_eq!(then, today, "{builtin} built against 0.1.0 behaves as today's");
}
