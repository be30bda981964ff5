//! Each sandbox limit stops its hostile guest with an error naming the limit and the plugin,
//! and the next invocation of a good guest on the same runtime succeeds. Through the engine,
//! on both databases: a failed invocation commits nothing of what it recorded, and an event
//! stopped by a limit is retried, then parked, while other leads are served.

use funnel_host::domain::PlatformEventType;
use funnel_host::runtime::wit::Event;
use funnel_host::runtime::{Failure, HandleContext, Limit, Runtime};

use crate::db::{Db, TestDb, on_both};
use crate::harness::{Harness, T0, lead_id, logs_starting};
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
fn a_plugin_error_is_a_rejection() {
    let runtime = runtime();
    match fails_then_recovers(&runtime, "fail") {
        Failure::Rejected(message) => assert!(message.contains("failing on purpose"), "{message}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

on_both!(plugin_error_discards_what_it_recorded);
async fn plugin_error_discards_what_it_recorded(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    // `fail` records an email, a timer and a list change, then returns an error.
    h.bind_test_guest("fail", None, None).await;
    let lead = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", None).await);
    h.settle().await;
    for table in ["outbox", "timers", "list_members"] {
        let rows = test_db.count(&format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(rows, 0, "{db:?}: nothing of the failed invocation in {table}");
    }
    let run = h.engine.store.run_snapshot(&lead).await.expect("run").expect("a run");
    assert_eq!((run.state, run.active), (None, true), "{db:?}: no state was saved, the run goes on");
    let timeline = h.timeline(&lead).await;
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind().as_str()).collect();
    assert_eq!(kinds, ["retry"], "{db:?}: only the failure is recorded: {timeline:#?}");
    let event = h.engine.store.next_pending_event(&lead).await.expect("event").expect("pending");
    assert_eq!(event.attempts, 1, "{db:?}: the event waits for its retry");
}

on_both!(events_stopped_by_a_limit_are_parked_and_other_leads_are_served);
async fn events_stopped_by_a_limit_are_parked_and_other_leads_are_served(db: Db) {
    let test_db = TestDb::new(db).await;
    let h = Harness::new(test_db.store().await, T0).await;
    h.bind_test_guest("loop", Some("fuel"), None).await;
    h.bind_test_guest("effect-flood", Some("flood"), None).await;
    h.bind_test_guest("roundtrip", None, None).await;
    let fuel = lead_id(&h.post("e1", PlatformEventType::CheckoutUpdated, "c1", Some("fuel")).await);
    let flood = lead_id(&h.post("e2", PlatformEventType::CheckoutUpdated, "c2", Some("flood")).await);
    let good = lead_id(&h.post("e3", PlatformEventType::CheckoutUpdated, "c3", None).await);
    h.settle().await;
    assert_eq!(logs_starting(&h.timeline(&good).await, "event=").len(), 1, "{db:?}: the good lead was served");
    for s in [1, 3, 7, 15] {
        h.at(s * 1000).await;
    }
    // The loop burns its fuel in ~0.1 s; on a loaded machine the 0.5 s deadline may come
    // first, which is the same sandbox doing its job.
    for (lead, limits) in [(&fuel, ["fuel limit", "wall-clock limit"]), (&flood, ["effect limit"; 2])] {
        let timeline = h.timeline(lead).await;
        let kinds: Vec<&str> = timeline.iter().map(|e| e.kind().as_str()).collect();
        // The same limit twice in a row is a deterministic failure: parked after the second
        // attempt instead of retried to the end. (Fuel, then the wall clock on a loaded
        // machine, are two different failures and earn more attempts, at most five.)
        let (last, retries) = kinds.split_last().expect("a timeline");
        assert_eq!(*last, "failed", "{db:?}: {timeline:#?}");
        assert!(retries.iter().all(|k| *k == "retry"), "{db:?}: {timeline:#?}");
        assert!((1..=4).contains(&retries.len()), "{db:?}: {timeline:#?}");
        if limits[0] == "effect limit" {
            assert_eq!(kinds, ["retry", "failed"], "{db:?}: the effect flood is parked at once: {timeline:#?}");
            assert!(timeline[1].detail().contains("not retried"), "{db:?}: {timeline:#?}");
        }
        let named = timeline.iter().all(|e| limits.iter().any(|limit| e.detail().contains(limit)));
        assert!(named, "{db:?}: each attempt names the {limits:?}: {timeline:#?}");
        assert!(h.messages(lead).await.is_empty(), "{db:?}: nothing the stopped plugin recorded was kept");
    }
    // Only the good lead's writes exist: its email and SMS, its 20-minute timer.
    assert_eq!(test_db.count("SELECT COUNT(*) FROM outbox").await, 2, "{db:?}");
    assert_eq!(test_db.count("SELECT COUNT(*) FROM timers").await, 1, "{db:?}");
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

/// Every invocation runs in a fresh instance, however the pool resets a slot for reuse (the
/// kernel's decommit, a memset, a scan for dirtied pages): a guest that leaves traces in a
/// global, a static buffer and freshly grown pages finds none of them on its next call, nor
/// after another invocation that failed by trapping in the same slot.
#[test]
fn no_invocation_sees_what_an_earlier_one_left_in_memory() {
    for (keep, pagemap) in [(0, false), (1024 * 1024, false), (1024 * 1024, true), (32 * 1024 * 1024, true)] {
        let mut config = crate::support::runtime_config();
        config.keep_resident_bytes = keep;
        config.pagemap_scan = pagemap;
        // One slot: every invocation reuses the same memory.
        config.max_concurrent_instances = 1;
        let runtime = Runtime::new(config).expect("runtime");
        let plugin = test_guest(&runtime);
        for round in 0..5 {
            let outcome =
                plugin.handle(&invocation("remember", Event::Captured), HandleContext::default()).expect("remember");
            let said: Vec<&str> = outcome.logs.iter().map(|l| l.text.as_str()).collect();
            assert_eq!(
                said,
                ["remember seen=0 static_dirty=false grown_dirty=false"],
                "keep {keep} pagemap {pagemap} round {round}: a trace of an earlier invocation was visible"
            );
            if round == 2 {
                plugin.handle(&invocation("panic", Event::Captured), HandleContext::default()).expect_err("panics");
            }
        }
    }
}
