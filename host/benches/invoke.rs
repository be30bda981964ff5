//! The cost of one plugin event in the sandbox. Run with `cargo bench -p funnel-host --bench invoke`.
//!
//! Prints one JSON object a line: `{"bench":"invoke","metric":…,"value":…,"unit":…}`:
//! - `fresh_store_*`: fresh store + instantiate + `handle` + drop (what each event costs),
//!   median and p99, and its phases apart, for the pool's keep-resident setting on and off;
//! - `live_call_*`: `handle` on an already-live instance (the floor);
//! - `invocations_per_s_2_threads`: fresh-store invocations per second on two threads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use funnel_host::guests;
use funnel_host::runtime::wit::{Event, Invocation, Lead};
use funnel_host::runtime::{HandleContext, LoadedPlugin, Runtime, RuntimeConfig};

const WARMUP: usize = 500;
const SAMPLES: usize = 20_000;

fn main() {
    let invocation = invocation();
    for (label, keep) in
        [("keep_resident_0", 0), ("keep_resident_64kib", 64 * 1024), ("keep_resident_1mib", 1024 * 1024)]
    {
        let runtime =
            Runtime::new(RuntimeConfig { keep_resident_bytes: keep, ..RuntimeConfig::default() }).expect("runtime");
        let plugin = runtime.load(guests::TEST_GUEST).expect("test guest loads");
        fresh_store(&plugin, &invocation, label);
        if keep == RuntimeConfig::default().keep_resident_bytes {
            live_calls(&plugin, &invocation);
            throughput(plugin, &invocation);
        }
    }
}

fn fresh_store(plugin: &LoadedPlugin, invocation: &Invocation, label: &str) {
    for _ in 0..WARMUP {
        plugin.handle(invocation, HandleContext::default()).expect("handle");
    }
    let mut totals = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        plugin.handle(invocation, HandleContext::default()).expect("handle");
        totals.push(t.elapsed());
    }
    emit(&format!("fresh_store_median_{label}"), percentile(&mut totals, 50.0));
    emit(&format!("fresh_store_p99_{label}"), percentile(&mut totals, 99.0));
    let mut phases: [Vec<Duration>; 3] = Default::default();
    for _ in 0..SAMPLES {
        let times = plugin.time_phases(invocation).expect("phases");
        for (i, t) in times.into_iter().enumerate() {
            phases[i].push(t);
        }
    }
    for (name, samples) in ["instantiate", "call", "drop"].iter().zip(phases.iter_mut()) {
        emit(&format!("fresh_store_{name}_median_{label}"), percentile(samples, 50.0));
    }
}

fn live_calls(plugin: &LoadedPlugin, invocation: &Invocation) {
    let mut times = plugin.time_calls_on_one_instance(invocation, SAMPLES).expect("live calls");
    emit("live_call_median", percentile(&mut times, 50.0));
    emit("live_call_p99", percentile(&mut times, 99.0));
}

fn throughput(plugin: Arc<LoadedPlugin>, invocation: &Invocation) {
    let per_thread = SAMPLES;
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let plugin = plugin.clone();
            let invocation = invocation.clone();
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    plugin.handle(&invocation, HandleContext::default()).expect("handle");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let rate = (2 * per_thread) as f64 / started.elapsed().as_secs_f64();
    println!(r#"{{"bench":"invoke","metric":"invocations_per_s_2_threads","value":{rate:.0},"unit":"1/s"}}"#);
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p / 100.0).round() as usize;
    samples[index.min(samples.len() - 1)]
}

fn emit(metric: &str, value: Duration) {
    println!(r#"{{"bench":"invoke","metric":"{metric}","value":{:.2},"unit":"us"}}"#, value.as_secs_f64() * 1e6);
}

fn invocation() -> Invocation {
    Invocation {
        lead: Lead {
            id: "bench-lead".into(),
            email: "ana@example.com".into(),
            name: Some("Ana".into()),
            first_name: Some("Ana".into()),
            phone: None,
            product_id: None,
            plan_id: None,
            price: None,
            captured_at_ms: 0,
            purchased: false,
            suppressed: false,
        },
        event: Event::Updated,
        now_ms: 0,
        config_json: r#"{"mode":"count"}"#.into(),
        state: None,
    }
}
