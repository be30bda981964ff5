//! Shared helpers: a runtime with test limits and invocations of the test guest.

use std::sync::Arc;
use std::time::Duration;

use funnel_host::guests;
use funnel_host::runtime::wit::{Event, Invocation, Lead, Money};
use funnel_host::runtime::{LoadedPlugin, Runtime, RuntimeConfig};

/// A runtime with limits small enough that hostile guests are stopped quickly.
pub(crate) fn runtime() -> Runtime {
    Runtime::new(runtime_config()).expect("runtime builds")
}

/// The configuration of [`runtime`], to change before building one.
pub(crate) fn runtime_config() -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    config.limits.fuel = 50_000_000;
    config.limits.memory_bytes = 32 * 1024 * 1024;
    config.limits.wall_clock = Duration::from_millis(500);
    config.limits.log_bytes = 4096;
    config.limits.effects = 20;
    config.max_concurrent_instances = 8;
    config.cache_dir = Some(compile_cache_dir());
    config
}

pub(crate) fn test_guest(runtime: &Runtime) -> Arc<LoadedPlugin> {
    runtime.load(guests::TEST_GUEST).expect("the test guest loads")
}

pub(crate) fn lead() -> Lead {
    Lead {
        id: "lead-1".into(),
        email: "ana@example.com".into(),
        name: Some("Ana Souza".into()),
        first_name: Some("Ana".into()),
        phone: Some("+5511999990000".into()),
        product_id: Some("p1".into()),
        plan_id: Some("q1".into()),
        price: Some(Money { amount_cents: 9700, currency: "BRL".into() }),
        captured_at_ms: 1_700_000_000_000,
        purchased: false,
        suppressed: false,
    }
}

/// An invocation of the test guest in `mode`.
pub(crate) fn invocation(mode: &str, event: Event) -> Invocation {
    Invocation {
        lead: lead(),
        event,
        now_ms: 1_700_000_000_000,
        config_json: format!(r#"{{"mode": "{mode}"}}"#),
        state: None,
    }
}

/// One compile cache for the whole test run, so each guest is compiled once, not per test.
pub(crate) fn compile_cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("funnel-test-cache-{}", std::process::id()))
}
