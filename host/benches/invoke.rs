//! The cost of one plugin event in the sandbox. Run with `cargo bench -p funnel-host --bench invoke`.
//!
//! Prints one JSON object a line: `{"bench":"invoke","metric":…,"value":…,"unit":…}`:
//! - `fresh_store_*`: fresh store + instantiate + `handle` + drop (what each event costs),
//!   median and p99, and its phases apart, for ways of resetting a pooled slot (the kernel's
//!   decommit, a memset of a kept prefix, a PAGEMAP_SCAN of dirtied pages) and the default;
//! - `live_call_*`: `handle` on an already-live instance (the floor);
//! - `invocations_per_s_2_threads`: fresh-store invocations per second on two threads;
//! - `*_rust`, `*_python`, `*_js`: the same strategy (`sms-first`, a lead's capture: parse the
//!   config, schedule two timers) written in each language, built by its own build
//!   (`funnel plugin build`): component size, the warm build's wall time, the host's compile
//!   time (`Component::new`), fuel and the fresh-store cost of one event. A language whose
//!   build cannot run here (no node, no PyPI) prints a `skipped_*` line instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use funnel_host::guests;
use funnel_host::runtime::wit::{Event, Invocation, Lead, Money};
use funnel_host::runtime::{HandleContext, LoadedPlugin, Runtime, RuntimeConfig};

const WARMUP: usize = 500;
const SAMPLES: usize = 20_000;
/// Samples per language: a Python event costs ~1.6 ms, so fewer than for the test guest.
const LANGUAGE_SAMPLES: usize = 2_000;

fn main() {
    // FUNNEL_BENCH_LANGUAGES=0 skips the three language builds (minutes) when only the test
    // guest's figures are wanted.
    if std::env::var("FUNNEL_BENCH_LANGUAGES").as_deref() != Ok("0") {
        languages();
    }
    let invocation = invocation();
    let default = RuntimeConfig::default();
    // The default last; before it, how the slot is reset on drop: the kernel's decommit
    // (keep 0, the old default), a memset of the kept prefix, or a scan for dirtied pages.
    for (label, keep, pagemap) in [
        ("keep_resident_0", 0, false),
        ("keep_resident_1mib_memset", 1024 * 1024, false),
        ("keep_resident_256kib_pagemap", 256 * 1024, true),
        ("default", default.keep_resident_bytes, default.pagemap_scan),
    ] {
        let runtime =
            Runtime::new(RuntimeConfig { keep_resident_bytes: keep, pagemap_scan: pagemap, ..default.clone() })
                .expect("runtime");
        let plugin = runtime.load(guests::TEST_GUEST).expect("test guest loads");
        fresh_store(&plugin, &invocation, label);
        if label == "default" {
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

/// The `sms-first` twins, side by side in one run.
fn languages() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("funnel-bench-invoke-{}", std::process::id()));
    let funnel = env!("CARGO_BIN_EXE_funnel");
    let builds: [(&str, Command); 3] = [
        ("rust", {
            let mut c = Command::new(funnel);
            c.args(["plugin", "build", "--dir"]).arg(repo.join("examples/rust-plugin"));
            c
        }),
        ("python", {
            let mut c = Command::new("bash");
            c.arg(repo.join("examples/python-plugin/build.sh")).arg(out.join("sms_first_py.wasm"));
            c
        }),
        ("js", {
            let mut c = Command::new("node");
            c.arg(repo.join("examples/js-plugin/build.mjs")).arg(out.join("sms_first_js.wasm"));
            c
        }),
    ];
    let invocation =
        sms_first_capture(&std::fs::read_to_string(repo.join("examples/sms-first/config.json")).expect("config"));
    let mut components = Vec::new();
    for (language, mut build) in builds {
        // Once to install the toolchain and warm the build, once timed (a warm build).
        let _ = build.output();
        let started = Instant::now();
        let built = build.output();
        let build_time = started.elapsed();
        match built {
            Ok(o) if o.status.success() => {
                let wasm = PathBuf::from(String::from_utf8_lossy(&o.stdout).lines().last().unwrap_or("").trim());
                let seconds = build_time.as_secs_f64();
                println!(r#"{{"bench":"invoke","metric":"build_warm_s_{language}","value":{seconds:.2},"unit":"s"}}"#);
                components.push((language.to_string(), wasm));
            }
            Ok(o) => skipped(language, &String::from_utf8_lossy(&o.stderr)),
            Err(e) => skipped(language, &e.to_string()),
        }
    }
    // Other builds of the same strategy to compare, as `label=path,label=path` (e.g. the
    // JavaScript twin built with another toolchain).
    for extra in std::env::var("FUNNEL_BENCH_EXTRA").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        if let Some((label, path)) = extra.split_once('=') {
            components.push((label.to_string(), PathBuf::from(path)));
        }
    }
    let context = HandleContext { has_phone: true, ..HandleContext::default() };
    for (language, wasm) in components {
        let bytes = std::fs::read(&wasm).expect("the build printed its component");
        let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
        let started = Instant::now();
        let plugin = runtime.load(&bytes).expect("the component loads");
        let compile = started.elapsed().as_secs_f64() * 1e3;
        println!(r#"{{"bench":"invoke","metric":"component_bytes_{language}","value":{},"unit":"B"}}"#, bytes.len());
        println!(r#"{{"bench":"invoke","metric":"compile_ms_{language}","value":{compile:.0},"unit":"ms"}}"#);
        let outcome = plugin.handle(&invocation, context.clone()).expect("the capture is handled");
        assert_eq!(outcome.effects.len(), 2, "{language}: the capture schedules the SMS and the email");
        println!(
            r#"{{"bench":"invoke","metric":"fuel_{language}","value":{},"unit":"instructions"}}"#,
            outcome.fuel_used
        );
        for _ in 0..LANGUAGE_SAMPLES / 10 {
            plugin.handle(&invocation, context.clone()).expect("handle");
        }
        let mut totals = Vec::with_capacity(LANGUAGE_SAMPLES);
        for _ in 0..LANGUAGE_SAMPLES {
            let t = Instant::now();
            plugin.handle(&invocation, context.clone()).expect("handle");
            totals.push(t.elapsed());
        }
        emit(&format!("fresh_store_median_{language}"), percentile(&mut totals, 50.0));
        emit(&format!("fresh_store_p99_{language}"), percentile(&mut totals, 99.0));
    }
    let _ = std::fs::remove_dir_all(&out);
}

fn skipped(language: &str, why: &str) {
    let why = why.lines().last().unwrap_or("").replace('"', "'");
    println!(r#"{{"bench":"invoke","metric":"skipped_{language}","value":0,"unit":"","why":"{why}"}}"#);
}

/// A lead with a phone and a big cart is captured: every twin parses the config and
/// schedules two timers.
fn sms_first_capture(config_json: &str) -> Invocation {
    Invocation {
        lead: Lead {
            id: "bench-lead".into(),
            email: "ana@example.com".into(),
            name: Some("Ana Souza".into()),
            first_name: Some("Ana".into()),
            phone: Some("+5511999990000".into()),
            product_id: Some("p1".into()),
            plan_id: Some("q1".into()),
            price: Some(Money { amount_cents: 29_700, currency: "BRL".into() }),
            captured_at_ms: 0,
            purchased: false,
            suppressed: false,
        },
        event: Event::Captured,
        now_ms: 0,
        config_json: config_json.into(),
        state: None,
    }
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
