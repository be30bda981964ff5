//! The strategy through the real runtime: build this crate to a component, run each scenario
//! with `funnel simulate` on a virtual clock, and compare with the expected timeline checked
//! in beside it. Also a few properties written directly with the scenario builder.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use funnel_sdk::testing::{Component, Options, Scenario, TestError};

/// The component, built once for all tests of this file.
fn plugin() -> &'static Component {
    static PLUGIN: OnceLock<Component> = OnceLock::new();
    PLUGIN.get_or_init(|| match Component::build(env!("CARGO_MANIFEST_DIR")) {
        Ok(plugin) => plugin,
        Err(e) => panic!("{e}"),
    })
}

/// Where the config, `scenarios/` and `expected/` are: beside this crate in a project made by
/// `funnel plugin new`, in `examples/sms-first` in funnel's repository.
fn strategy_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("scenarios").is_dir() { here.to_path_buf() } else { here.join("../sms-first") }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn config() -> String {
    read(&strategy_dir().join("config.json"))
}

/// Every scenario of `scenarios/` against `expected/`, a line diff for each that differs;
/// `FUNNEL_BLESS=1 cargo test` writes the new timelines instead.
#[test]
fn every_scenario_prints_its_expected_timeline() {
    if let Err(e) = plugin().check_scenarios(strategy_dir()) {
        panic!("{e}");
    }
}

#[test]
fn the_coupon_line_is_the_producers_own_words() {
    let big_cart = Scenario::new("ana@example.com").name("Ana Souza").product("p1", "q1").coupon("VOLTA10", 10);
    let options = Options { show_body: true, ..Options::default() };
    let timeline = plugin()
        .simulate_with(&config(), &big_cart.price_cents(29_700, "BRL").to_json().expect("valid"), options)
        .expect("simulates");
    let body = timeline.emails().next().and_then(|e| e.body.clone()).expect("an email with its body");
    assert!(body.contains("Use o cupom VOLTA10 e ganhe um desconto ao finalizar."), "{body}");
    assert!(!body.contains("coupon"), "no English in a Portuguese email: {body}");
}

#[test]
fn a_lead_without_a_name_gets_no_dangling_comma() {
    let timeline = plugin().simulate(&config(), &Scenario::new("bia@example.com")).expect("simulates");
    let subject = timeline.emails().next().and_then(|e| e.subject.clone()).expect("an email");
    assert_eq!(subject, "Ainda dá tempo de finalizar");
}

#[test]
fn only_a_cart_over_the_threshold_gets_the_coupon() {
    let lead =
        |cents| Scenario::new("ana@example.com").product("p1", "q1").coupon("VOLTA10", 10).price_cents(cents, "BRL");
    for (cents, coupon) in [(20_001, Some("VOLTA10")), (20_000, None)] {
        let timeline = plugin().simulate(&config(), &lead(cents)).expect("simulates");
        let emails: Vec<_> = timeline.emails().collect();
        assert_eq!(emails.len(), 1, "{cents}: {timeline:?}");
        assert_eq!(emails[0].coupon.as_deref(), coupon, "{cents}");
        assert_eq!(emails[0].at_s, 4 * 3600);
    }
}

#[test]
fn a_lead_without_a_phone_gets_no_sms_and_one_who_bought_gets_nothing_more() {
    let no_phone = plugin().simulate(&config(), &Scenario::new("bia@example.com").until("96h")).expect("simulates");
    assert_eq!(no_phone.sms().count(), 0);
    assert_eq!(no_phone.emails().count(), 1);

    let bought = Scenario::new("bia@example.com").phone("+5511988887777").order_paid_at("10m");
    let timeline = plugin().simulate(&config(), &bought).expect("simulates");
    assert!(timeline.entries().is_empty(), "{timeline:?}");
}

#[test]
fn a_bad_config_is_refused_naming_the_field() {
    let bad = r#"{"sms": "Oi", "subject": "Volta", "html": "x", "coupon_line": "Use {{coupon_code}}", "sms_after": "1h", "email_after": "30m"}"#;
    match plugin().simulate(bad, &Scenario::new("ana@example.com")) {
        Err(TestError::Simulate { status: Some(2), stderr }) => assert!(stderr.contains("email_after"), "{stderr}"),
        other => panic!("expected exit 2 naming email_after, got {other:?}"),
    }
}
