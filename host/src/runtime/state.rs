//! What a [`wasmtime::Store`] holds during one invocation: a WASI context that grants nothing,
//! the memory limiter, the effect buffer, the log, and the lead's snapshot the read-only
//! capabilities answer from.

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::effects::Effect;
use super::error::Limit;
use super::limits::Limits;
use super::stdio::{GuestOutput, LogBuffer};
use super::wit::{Capability, Coupon, LogLevel, SentMessage};

/// What the host knows about the lead beyond the `invocation` record, for the read-only
/// capabilities (`lists`, `coupon`, `messages`) and the send checks.
#[derive(Clone, Debug, Default)]
pub struct HandleContext {
    /// The lead's id (what `choose-variant` hashes).
    pub lead_id: String,
    /// Lists the lead's contact is on.
    pub lists: Vec<String>,
    /// The binding's coupon, if any.
    pub coupon: Option<Coupon>,
    /// Messages already sent to the lead, oldest first.
    pub messages: Vec<SentMessage>,
    /// Whether the lead has a phone number.
    pub has_phone: bool,
    /// Whether the lead's email address is suppressed.
    pub email_suppressed: bool,
    /// Whether the lead's phone is suppressed.
    pub phone_suppressed: bool,
    /// Timers of the lead waiting to fire.
    pub pending_timers: usize,
    /// The window the lead's recovery messages go out in (`send-window-opens`), if any.
    pub send_window: Option<crate::domain::SendWindow>,
    /// What the host looks up or commits for the lead while the plugin runs (`unique-coupon`,
    /// `choose-variant`); `None` outside the engine (then those calls answer `invalid`).
    pub services: Option<Services>,
}

/// The few things a capability needs from outside the sandbox while the plugin runs, for the
/// lead being handled. The dispatcher implements it over the store (`dispatch::services`), so
/// this module still never touches a database itself. Calls block the invocation's thread
/// (a blocking thread, never an async worker) for one short query or transaction.
pub trait LeadServices: Send + Sync {
    /// Give the lead its unique coupon (or the one it already has), committed at once.
    fn unique_coupon(&self) -> Result<Coupon, UniqueCouponRefusal>;
    /// The variant recorded for the lead at a split step, if any.
    fn recorded_variant(&self, step: &str) -> Result<Option<String>, String>;
}

/// Why `unique-coupon` gave no code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UniqueCouponRefusal {
    /// The scope has no pool or pattern (the plugin's mistake: `invalid`).
    NoSource(String),
    /// The pool is used up (`limit-reached`: the plugin decides).
    UsedUp(String),
    /// The store failed: the invocation fails and is retried.
    Failed(String),
}

/// [`LeadServices`] in a [`HandleContext`].
#[derive(Clone)]
pub struct Services(pub Arc<dyn LeadServices>);

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services")
    }
}

/// Which export is running: capabilities that record effects exist only in `handle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Describe,
    ValidateConfig,
    Handle,
}

pub(crate) struct InvocationState {
    /// Built on the guest's first WASI call, not per invocation: most `handle` calls of a
    /// compiled-language plugin make none, and building it (streams, clocks, random sources)
    /// was a sizeable share of a small invocation. It is still this invocation's own.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    pub(crate) phase: Phase,
    pub(crate) declared: Vec<Capability>,
    pub(crate) effects: Vec<Effect>,
    pub(crate) max_effects: usize,
    pub(crate) limit_hit: Option<Limit>,
    /// Capability calls refused as the plugin's mistake, in order (see `capabilities::refused`).
    pub(crate) refusals: Vec<String>,
    pub(crate) log: LogBuffer,
    pub(crate) ctx: HandleContext,
    pub(crate) lists: BTreeSet<String>,
    pub(crate) now_ms: i64,
    /// The lead's pending timers, counting this invocation's schedules and cancels.
    pub(crate) timers_pending: usize,
    pub(crate) max_timers: usize,
    /// The unique coupon `unique-coupon` gave in this invocation: `{{coupon_code}}` renders it.
    pub(crate) unique_coupon: Option<Coupon>,
    /// Time spent waiting on the store in capability calls since the wall-clock deadline was
    /// last checked: credited back to the plugin (see `LoadedPlugin::run`), so a busy database
    /// does not count as the plugin's own time.
    pub(crate) host_wait: std::time::Duration,
}

impl InvocationState {
    pub(crate) fn new(
        limits: &Limits,
        phase: Phase,
        declared: Vec<Capability>,
        ctx: HandleContext,
        now_ms: i64,
    ) -> Self {
        let log = LogBuffer::new(limits.log_bytes, limits.log_lines);
        let lists = ctx.lists.iter().cloned().collect();
        let timers_pending = ctx.pending_timers;
        InvocationState {
            wasi: None,
            table: ResourceTable::new(),
            memory: MemoryLimiter { max_bytes: limits.memory_bytes, hit: false },
            phase,
            declared,
            effects: Vec::new(),
            max_effects: limits.effects,
            limit_hit: None,
            refusals: Vec::new(),
            log,
            ctx,
            lists,
            now_ms,
            timers_pending,
            max_timers: limits.timers_per_lead,
            unique_coupon: None,
            host_wait: std::time::Duration::ZERO,
        }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (log, now_ms) = (&self.log, self.now_ms);
        let ctx = self.wasi.get_or_insert_with(|| wasi_context(log, now_ms));
        WasiCtxView { ctx, table: &mut self.table }
    }
}

/// A WASI context that grants nothing: output goes to the invocation's log, the only time is
/// the invocation's `now`, randomness is deterministic.
fn wasi_context(log: &LogBuffer, now_ms: i64) -> WasiCtx {
    WasiCtx::builder()
        .stdout(GuestOutput { log: log.clone(), source: "stdout" })
        .stderr(GuestOutput { log: log.clone(), source: "stderr" })
        // No real clocks: the only time a plugin sees is the invocation's `now`.
        .wall_clock(FrozenWallClock(now_ms))
        .monotonic_clock(FrozenMonotonicClock)
        // Deterministic randomness keeps `funnel simulate` reproducible.
        .secure_random(wasmtime_wasi::Deterministic::new(vec![7, 42, 101, 13, 250, 3, 77, 19]))
        .insecure_random(wasmtime_wasi::Deterministic::new(vec![11, 23, 5, 97]))
        .insecure_random_seed(0x5eed)
        .build()
}

/// Refuses memory growth past the limit and remembers that it did, so the trap that follows
/// can be reported as the memory limit rather than a generic failure.
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

struct FrozenWallClock(i64);

impl wasmtime_wasi::HostWallClock for FrozenWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }
}

struct FrozenMonotonicClock;

impl wasmtime_wasi::HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Log a line from the plugin.
pub(crate) fn log(state: &InvocationState, level: LogLevel, text: &str) {
    state.log.push(level, "plugin", text);
}
