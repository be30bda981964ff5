//! A compiled, pre-instantiated plugin and the three calls into it. Every call gets a fresh
//! wasmtime [`Store`] with the runtime's limits, so a trap or a hit limit never outlives its call.

use sha2::{Digest, Sha256};
use wasmtime::component::InstancePre;
use wasmtime::{Store, Trap};

use super::error::{Failure, InvokeError, Limit, LoadError};
use super::limits::Limits;
use super::state::{HandleContext, InvocationState, Phase};
use super::wit::{self, BindingContext, Capability, ConfigNote, ConfigReport, Invocation, PluginInfo};
use super::{HandleOutcome, Runtime, epoch};

/// Hex sha256 of a component's bytes: its identity in the caches and the store.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A plugin ready to run: compiled once, linked once, described once.
pub struct LoadedPlugin {
    /// What `describe()` answered when it was loaded.
    pub info: PluginInfo,
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    pre: wit::FunnelPre<InvocationState>,
    limits: Limits,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("info", &self.info).field("sha256", &self.sha256).finish()
    }
}

/// Whether the component imports any interface of the `funnel:plugin` package.
fn imports_funnel(component: &wasmtime::component::Component) -> bool {
    component.component_type().imports(component.engine()).any(|(name, _)| name.starts_with("funnel:plugin/"))
}

impl LoadedPlugin {
    pub(crate) fn new(
        runtime: &Runtime,
        component: wasmtime::component::Component,
        sha256: String,
    ) -> Result<Self, LoadError> {
        let instance_pre: InstancePre<InvocationState> =
            runtime.linker().instantiate_pre(&component).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        // Linking worked, so the imports fit. A component that uses the funnel world's imports but
        // lacks its exports is a plugin missing its export glue; one with no funnel import at all
        // was built for another world.
        let pre = wit::FunnelPre::new(instance_pre).map_err(|e| {
            if imports_funnel(&component) {
                LoadError::MissingExports(format!("{e:#}"))
            } else {
                LoadError::WrongWorld(format!("{e:#}"))
            }
        })?;
        let mut plugin = LoadedPlugin {
            info: PluginInfo {
                name: "unnamed".into(),
                version: "0".into(),
                description: String::new(),
                capabilities: vec![],
            },
            sha256,
            pre,
            limits: runtime.limits().clone(),
        };
        plugin.info = plugin.describe().map_err(LoadError::Describe)?;
        check_info(&plugin.info).map_err(LoadError::BadInfo)?;
        Ok(plugin)
    }

    /// The host functions the component imports that need a capability it did not declare in
    /// `describe()`, with that capability (`send-sms` without `sms`, say): every call to one
    /// will be refused with `not-declared`. A Rust component imports only the functions it
    /// calls, so this is exact for it; a Python or JavaScript one imports the whole interface.
    pub fn undeclared_imports(&self) -> Vec<(String, Capability)> {
        let engine = self.pre.engine();
        let component = self.pre.instance_pre().component();
        let mut found = Vec::new();
        for (name, item) in component.component_type().imports(engine) {
            let wasmtime::component::types::ComponentItem::ComponentInstance(host) = item.ty else { continue };
            if !name.starts_with("funnel:plugin/host@") {
                continue;
            }
            for (function, _) in host.exports(engine) {
                let needs = match function {
                    "send-email" => Capability::Email,
                    "send-sms" => Capability::Sms,
                    "schedule" => Capability::Timers,
                    "add-to-list" | "remove-from-list" => Capability::Lists,
                    "coupon" => Capability::Coupons,
                    _ => continue,
                };
                if !self.info.capabilities.contains(&needs) {
                    found.push((function.to_string(), needs));
                }
            }
        }
        found
    }

    /// `name@version`, for errors and logs.
    pub fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    /// Call `describe()`.
    pub fn describe(&self) -> Result<PluginInfo, InvokeError> {
        let (info, _) =
            self.run(Phase::Describe, HandleContext::default(), 0, |world, store| world.call_describe(store))?;
        Ok(info)
    }

    /// Call `validate-config(config, binding)`: the plugin's report, or its list of problems.
    pub fn validate_config(
        &self,
        config_json: &str,
        binding: &BindingContext,
    ) -> Result<Result<ConfigReport, Vec<ConfigNote>>, InvokeError> {
        let (result, _) = self.run(Phase::ValidateConfig, HandleContext::default(), 0, |world, store| {
            world.call_validate_config(store, config_json, binding)
        })?;
        Ok(result)
    }

    /// Call `handle(invocation)` with the lead's context. On success, the new state and the
    /// recorded effects; on any failure (including `err` from the plugin) nothing is kept.
    pub fn handle(&self, invocation: &Invocation, ctx: HandleContext) -> Result<HandleOutcome, InvokeError> {
        let now = invocation.now_ms;
        let (result, mut store) =
            self.run(Phase::Handle, ctx, now, |world, store| world.call_handle(store, invocation))?;
        let fuel_used = self.limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        match result {
            Ok(Some(new_state)) if new_state.len() > self.limits.state_bytes => {
                Err(self.error(Failure::LimitExceeded(Limit::State(self.limits.state_bytes))))
            }
            Ok(new_state) => Ok(HandleOutcome {
                state: new_state,
                effects: std::mem::take(&mut state.effects),
                refusals: std::mem::take(&mut state.refusals),
                logs: state.log.take(),
                fuel_used,
                unique_coupon: state.unique_coupon.take(),
            }),
            Err(message) => Err(self.error(Failure::Rejected(bounded_error(&message, self.limits.error_bytes)))),
        }
    }

    /// For the invoke benchmark: the phases of one fresh-store invocation timed apart
    /// (instantiate, call, drop).
    #[doc(hidden)]
    pub fn time_phases(&self, invocation: &Invocation) -> Result<[std::time::Duration; 3], InvokeError> {
        use std::time::Instant;
        let t0 = Instant::now();
        let state = InvocationState::new(
            &self.limits,
            Phase::Handle,
            self.info.capabilities.clone(),
            HandleContext::default(),
            0,
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        store.set_fuel(self.limits.fuel).map_err(|e| self.error(Failure::Instantiate(format!("{e:#}"))))?;
        store.set_epoch_deadline(1_000);
        let world = self.pre.instantiate(&mut store).map_err(|e| self.error(Failure::Instantiate(format!("{e:#}"))))?;
        let t1 = Instant::now();
        let result =
            world.call_handle(&mut store, invocation).map_err(|e| self.error(Failure::Trap(format!("{e:#}"))))?;
        let t2 = Instant::now();
        drop(store);
        let t3 = Instant::now();
        result.map_err(|m| self.error(Failure::Rejected(m)))?;
        Ok([t1 - t0, t2 - t1, t3 - t2])
    }

    /// For the invoke benchmark's floor: `n` calls of `handle` on one live instance.
    #[doc(hidden)]
    pub fn time_calls_on_one_instance(
        &self,
        invocation: &Invocation,
        n: usize,
    ) -> Result<Vec<std::time::Duration>, InvokeError> {
        let state = InvocationState::new(
            &self.limits,
            Phase::Handle,
            self.info.capabilities.clone(),
            HandleContext::default(),
            0,
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.set_fuel(u64::MAX / 2).map_err(|e| self.error(Failure::Instantiate(format!("{e:#}"))))?;
        store.set_epoch_deadline(u64::MAX / 2);
        let world = self.pre.instantiate(&mut store).map_err(|e| self.error(Failure::Instantiate(format!("{e:#}"))))?;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = std::time::Instant::now();
            let result =
                world.call_handle(&mut store, invocation).map_err(|e| self.error(Failure::Trap(format!("{e:#}"))))?;
            times.push(t.elapsed());
            result.map_err(|m| self.error(Failure::Rejected(m)))?;
            store.data_mut().effects.clear();
        }
        Ok(times)
    }

    /// Instantiate in a fresh store with the limits applied and run `call`.
    fn run<R>(
        &self,
        phase: Phase,
        ctx: HandleContext,
        now_ms: i64,
        call: impl FnOnce(&wit::Funnel, &mut Store<InvocationState>) -> wasmtime::Result<R>,
    ) -> Result<(R, Store<InvocationState>), InvokeError> {
        let declared = if phase == Phase::Handle { self.info.capabilities.clone() } else { Vec::<Capability>::new() };
        let state = InvocationState::new(&self.limits, phase, declared, ctx, now_ms);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        store.set_fuel(self.limits.fuel).map_err(|e| self.error(Failure::Instantiate(format!("{e:#}"))))?;
        let ticks = self.limits.wall_clock.as_millis().div_ceil(epoch::EPOCH_TICK.as_millis()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        // At the deadline: time the invocation spent waiting on the store in capability calls
        // (`unique-coupon`, `choose-variant`; each bounded by its own deadline) is given back
        // once, so the limit measures the plugin's own time; otherwise the guest is interrupted.
        store.epoch_deadline_callback(|mut ctx| {
            let credit = std::mem::take(&mut ctx.data_mut().host_wait);
            let ticks = credit.as_millis().div_ceil(epoch::EPOCH_TICK.as_millis());
            match u64::try_from(ticks) {
                Ok(ticks) if ticks > 0 => Ok(wasmtime::UpdateDeadline::Continue(ticks)),
                _ => Err(Trap::Interrupt.into()),
            }
        });
        let world = match self.pre.instantiate(&mut store) {
            Ok(world) => world,
            Err(e) => return Err(self.error(self.classify(&e, store.data(), true))),
        };
        match call(&world, &mut store) {
            Ok(result) => Ok((result, store)),
            Err(e) => Err(self.error(self.classify(&e, store.data(), false))),
        }
    }

    fn classify(&self, err: &wasmtime::Error, state: &InvocationState, instantiating: bool) -> Failure {
        if let Some(limit) = &state.limit_hit {
            return Failure::LimitExceeded(limit.clone());
        }
        if state.memory.hit {
            return Failure::LimitExceeded(Limit::Memory(self.limits.memory_bytes));
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::LimitExceeded(Limit::Fuel(self.limits.fuel)),
            Some(Trap::Interrupt) => Failure::LimitExceeded(Limit::WallClock(self.limits.wall_clock)),
            Some(Trap::StackOverflow) => Failure::LimitExceeded(Limit::Stack),
            _ if instantiating => Failure::Instantiate(format!("{err:#}")),
            _ => {
                // A Rust panic prints its message to stderr before trapping: the reason a
                // person needs is there, not in "unreachable executed".
                let stderr: Vec<String> = state
                    .log
                    .take()
                    .into_iter()
                    .filter(|l| l.source == "stderr" && !l.text.starts_with("note: run with `RUST_BACKTRACE"))
                    .map(|l| l.text)
                    .collect();
                let mut said = if stderr.is_empty() { String::new() } else { format!(" ({})", stderr.join(" ")) };
                if said.len() > 500 {
                    let cut = (0..=500).rev().find(|i| said.is_char_boundary(*i)).unwrap_or(0);
                    said.truncate(cut);
                    said.push_str("…)");
                }
                Failure::Trap(format!("{}{said}", err.root_cause()))
            }
        }
    }

    fn error(&self, failure: Failure) -> InvokeError {
        InvokeError { plugin: self.label(), failure }
    }
}

/// A `handle` error as it is kept (stored with the event, shown in the timeline): no control
/// characters (PostgreSQL cannot hold a NUL) and at most `max` bytes, the cut marked.
fn bounded_error(message: &str, max: usize) -> String {
    let clean = crate::domain::text::sanitize(message);
    if clean.len() <= max {
        return clean.into_owned();
    }
    let cut = (0..=max).rev().find(|i| clean.is_char_boundary(*i)).unwrap_or(0);
    format!("{}… (truncated: {} bytes in all)", &clean[..cut], message.len())
}

/// Schema pattern of a plugin name: what [`name_ok`] accepts.
pub const NAME_PATTERN: &str = r"^[a-z0-9_-]{1,64}$";
/// Schema pattern of a plugin version: what [`version_problem`] accepts.
pub const VERSION_PATTERN: &str = r"^[A-Za-z0-9.+_-]{1,32}$";

/// Whether a plugin name is 1 to 64 characters of a-z, 0-9, '-' or '_'.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A plugin's self-description must be usable as a name in the API and in logs.
fn check_info(info: &PluginInfo) -> Result<(), String> {
    if !name_ok(&info.name) {
        return Err(format!("name {:?}: use 1 to 64 characters of a-z, 0-9, '-' or '_'", info.name));
    }
    if let Some(problem) = version_problem(&info.version) {
        return Err(format!("version {:?}: {problem}", info.version));
    }
    Ok(())
}

/// What is wrong with a plugin version (the one `describe()` returns, or `?version=` on an
/// upload), if anything: 1 to 32 characters of a-z, A-Z, 0-9, '.', '-', '+' or '_'.
pub fn version_problem(version: &str) -> Option<String> {
    let ok = !version.is_empty()
        && version.len() <= 32
        && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'));
    (!ok).then(|| "use 1 to 32 characters of a-z, A-Z, 0-9, '.', '-', '+' or '_', like \"1.0.0\"".to_string())
}
