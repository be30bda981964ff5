//! Each sandbox limit stops its hostile guest with an error naming the limit and the plugin,
//! and the next invocation of a good guest on the same runtime succeeds.

use funnel_host::runtime::wit::Event;
use funnel_host::runtime::{Failure, HandleContext, Limit, Runtime};

use crate::support::{invocation, runtime, test_guest};

/// Run `mode`, expect it to fail, then prove the runtime still serves a good invocation.
fn fails_then_recovers(runtime: &Runtime, mode: &str) -> Failure {
    let plugin = test_guest(runtime);
    let err = plugin.handle(&invocation(mode, Event::Captured), HandleContext::default()).expect_err(mode);
    assert_eq!(err.plugin, "test-guest@0.1.0", "the error names the plugin");
    let good = plugin.handle(&invocation("count", Event::Captured), HandleContext::default());
    assert!(good.is_ok(), "after {mode}, a good invocation must work: {good:?}");
    err.failure
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let runtime = runtime();
    let failure = fails_then_recovers(&runtime, "loop");
    assert_eq!(failure, Failure::LimitExceeded(Limit::Fuel(50_000_000)));
}

#[test]
fn loop_with_plenty_of_fuel_hits_the_wall_clock_deadline() {
    let mut config = funnel_host::runtime::RuntimeConfig::default();
    config.limits.fuel = u64::MAX / 2;
    config.limits.wall_clock = std::time::Duration::from_millis(100);
    let runtime = Runtime::new(config).expect("runtime");
    let started = std::time::Instant::now();
    let failure = fails_then_recovers(&runtime, "sleepy-loop");
    assert_eq!(failure, Failure::LimitExceeded(Limit::WallClock(std::time::Duration::from_millis(100))));
    // Generous bound: only checks the deadline is what stopped it, not how fast.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let runtime = runtime();
    let failure = fails_then_recovers(&runtime, "memory-bomb");
    assert_eq!(failure, Failure::LimitExceeded(Limit::Memory(32 * 1024 * 1024)));
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    let runtime = runtime();
    match fails_then_recovers(&runtime, "panic") {
        Failure::Trap(message) => assert!(message.contains("test guest panics on purpose"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    let runtime = runtime();
    assert_eq!(fails_then_recovers(&runtime, "recursion"), Failure::LimitExceeded(Limit::Stack));
}

#[test]
fn effect_flood_hits_the_effect_limit() {
    let runtime = runtime();
    assert_eq!(fails_then_recovers(&runtime, "effect-flood"), Failure::LimitExceeded(Limit::Effects(20)));
}

#[test]
fn plugin_error_discards_what_it_recorded() {
    let runtime = runtime();
    match fails_then_recovers(&runtime, "fail") {
        Failure::Rejected(message) => assert!(message.contains("failing on purpose"), "{message}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn log_flood_is_truncated_not_fatal() {
    let runtime = runtime();
    let plugin = test_guest(&runtime);
    let outcome =
        plugin.handle(&invocation("log-flood", Event::Captured), HandleContext::default()).expect("log flood survives");
    let bytes: usize = outcome.logs.iter().map(|l| l.text.len()).sum();
    assert!(bytes <= 4096 + 200, "log capped at the limit, got {bytes} bytes");
    let last = outcome.logs.last().expect("some lines");
    assert!(last.text.contains("log truncated"), "the cap is announced: {last:?}");
}
