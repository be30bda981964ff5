//! The kill -9 loop, big: `cargo bench -p funnel-host --bench chaos`. A real `funnel serve` on
//! SQLite, then two replicas on PostgreSQL (a schema of `FUNNEL_BENCH_POSTGRES_URL`, default
//! postgres://postgres@127.0.0.1:5432/test, made and dropped here; `none` skips it), SIGKILLed
//! `FUNNEL_CHAOS_KILLS` times (default 20) at random moments while `FUNNEL_CHAOS_LEADS` leads
//! (default 1000) go through a `flow` binding with short waits; a real SMTP server counts what
//! arrives. Prints JSON lines: leads, kills, expected, received, lost (must be 0), duplicates
//! with the same Message-ID (sends in flight at a kill) and with another (must be 0), timers
//! never fired (must be 0). The driver is `host/tests/all/chaos.rs`, shared with its short test.

// Its short tests are compiled here too by `cargo clippy --all-targets` (benches are checked
// as tests), without the test binary's other modules.
#[allow(dead_code, unused_imports)]
#[path = "../tests/all/chaos.rs"]
mod chaos;
#[allow(dead_code)]
#[path = "../tests/all/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/all/smtp_server.rs"]
mod smtp_server;

use chaos::{ChaosConfig, ChaosDatabase, run};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (leads, kills) = (knob("FUNNEL_CHAOS_LEADS", 1000), knob("FUNNEL_CHAOS_KILLS", 20));
    let mut failed = false;
    let postgres =
        std::env::var("FUNNEL_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut databases = vec![ChaosDatabase::Sqlite];
    if postgres != "none" {
        databases.push(ChaosDatabase::Postgres(postgres));
    }
    for database in databases {
        let figures = run(ChaosConfig { database, leads, kills }).await;
        figures.print();
        failed |= figures.lost > 0 || figures.duplicates_other_message_id > 0 || figures.timers_never_fired > 0;
    }
    if failed {
        eprintln!("chaos: something accepted was lost, sent twice, or a timer never fired (figures above)");
        std::process::exit(1);
    }
}
