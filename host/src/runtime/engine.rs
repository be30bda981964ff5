//! The one wasmtime [`Engine`] of the process and the ticker that advances its epoch, which is
//! how a wall-clock deadline interrupts a guest that never yields.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeConfig;

/// How often the epoch advances; the wall-clock limit is rounded up to a multiple of it.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Build the engine: Cranelift, component model, fuel, epoch interruption and the pooling
/// allocator sized for `max_concurrent_instances`.
pub(crate) fn build(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true);
    wasm.consume_fuel(true);
    wasm.epoch_interruption(true);
    // A guest that recurses without end must hit this, not the host thread's stack.
    wasm.max_wasm_stack(1024 * 1024);

    let instances = config.max_concurrent_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // A component holds several core instances (a Rust guest ~4, a Python guest more).
    pool.total_component_instances(instances);
    pool.total_core_instances(instances * 16);
    pool.total_memories(instances * 4);
    pool.total_tables(instances * 8);
    pool.max_memories_per_component(4);
    pool.max_tables_per_component(8);
    pool.max_core_instances_per_component(32);
    pool.max_memory_size(config.limits.memory_bytes);
    // How much of each slot to keep resident on drop; see RuntimeConfig::keep_resident_bytes.
    pool.linear_memory_keep_resident(config.keep_resident_bytes);
    pool.table_keep_resident(64 * 1024);
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("funnel-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
