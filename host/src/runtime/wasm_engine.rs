//! The one wasmtime [`Engine`] of the process: its configuration (fuel, epochs, the pooling
//! allocator sized for the instance pool).

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeConfig;

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
    // With PAGEMAP_SCAN (Linux 6.7+) a dropped instance's memory is reset page by page, only
    // the pages it dirtied (back to the module's image or to zero), and they stay mapped: the
    // next instance in the slot takes no page faults. Without it, `keep_resident` memsets its
    // whole prefix. Either way wasmtime restores the slot's contents before reuse.
    pool.pagemap_scan(if config.pagemap_scan { wasmtime::Enabled::Auto } else { wasmtime::Enabled::No });
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}
