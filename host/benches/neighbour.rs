//! The noisy neighbour, big: `cargo bench -p funnel-host --bench neighbour`. One real `funnel
//! serve` on SQLite with a real SMTP server; tenant B's `FUNNEL_NEIGHBOUR_B_LEADS` leads (default
//! 100, 50 ms apart) through a flow that emails at once, first alone, then right after tenant A
//! posts `FUNNEL_NEIGHBOUR_A_LEADS` (default 200) events to its hostile plugin (fuel burn,
//! wall-clock sleep, memory bomb, effect flood). Prints JSON lines: B's p50/p99 latency (posted
//! → email at the SMTP server) alone and beside A in the same run, the p99 ratio, B's missing
//! emails, A's parked events, the server's peak RSS. The driver is
//! `host/tests/all/neighbour.rs`, shared with its short test.

// Its short test is compiled here too by `cargo clippy --all-targets` (benches are checked as
// tests), without the test binary's other modules.
#[allow(dead_code, unused_imports)]
#[path = "../tests/all/neighbour.rs"]
mod neighbour;
#[allow(dead_code)]
#[path = "../tests/all/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/all/smtp_server.rs"]
mod smtp_server;

use std::time::Duration;

use neighbour::{NeighbourConfig, run};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let config = NeighbourConfig {
        b_leads: knob("FUNNEL_NEIGHBOUR_B_LEADS", 100),
        a_leads: knob("FUNNEL_NEIGHBOUR_A_LEADS", 200),
        b_spacing: Duration::from_millis(50),
    };
    let figures = run(config).await;
    figures.print();
    if figures.b_missing > 0 || figures.a_parked < figures.a_leads as i64 {
        eprintln!("neighbour: B's emails missing or A's events not all parked (figures above)");
        std::process::exit(1);
    }
}
