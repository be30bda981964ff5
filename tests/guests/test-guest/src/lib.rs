//! A test guest whose behaviour the binding's config picks, so one component covers the
//! well-behaved case and each kind of hostile plugin the runtime must survive.
//!
//! Config: `{"mode": "..."}` (and `"seed": N` for `random-effects`); see [`Mode`].

use funnel_sdk::{Call, Capability, Duration, Event, LogLevel, MessageKind, Next, Plugin, PluginInfo, host};
use serde::{Deserialize, Serialize};

struct TestGuest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: Mode,
    /// Seeds `random-effects` (with the event count, so each event differs).
    #[serde(default)]
    seed: u64,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Counts events in its state and does nothing else: the benchmark's guest.
    Count,
    /// Calls every capability once and logs what came back.
    Roundtrip,
    /// On capture, asks for a timer in one second; logs every event (for restart tests).
    ShortTimer,
    /// Spins forever (fuel or the wall-clock deadline must stop it).
    Loop,
    /// Spins without consuming much fuel per iteration: only the epoch deadline stops it.
    SleepyLoop,
    /// Allocates until memory runs out.
    MemoryBomb,
    /// Panics (a trap).
    Panic,
    /// Recurses without end (stack overflow).
    Recursion,
    /// Logs far more than the per-invocation cap, through `log` and stdout.
    LogFlood,
    /// Sends emails without end.
    EffectFlood,
    /// Records an email, a timer and a list change, then returns an error: nothing may be
    /// committed.
    Fail,
    /// Fails while the lead is less than a second old (a transient failure the host retries),
    /// then logs `event=<kind>` for each event: per-lead order behind a retry shows in the log.
    FlakyFirstSecond,
    /// Passes NUL and other control characters to every capability that takes text and logs
    /// what each answered (`cc <call>=<answer>`), then logs a line with a NUL in it.
    ControlChars,
    /// Returns an error whose text holds a NUL byte.
    NulError,
    /// Returns an error of 100,000 bytes.
    LongError,
    /// Logs 1,000 empty lines.
    EmptyLogs,
    /// Keeps 100,000 bytes of state.
    BigState,
    /// Schedules 15 timers on every event and logs the first refusal (`timers refused=<error>`)
    /// or `timers ok`.
    TimerFlood,
    /// Makes random capability calls with random arguments (long, empty, control characters,
    /// template syntax, huge durations, unknown timer ids) and returns a random outcome: the
    /// fuzzer's plugin, seeded by `seed` and the event count.
    RandomEffects,
    /// Asks for the lead's unique coupon twice and its variant at split `s` twice, then for a
    /// split with an unusable list, logging each answer (`unique=…`, `split=…`, `bad-split=…`),
    /// and sends an email showing `{{coupon_code}}`.
    UniqueAndSplit,
    /// Reports what it finds left over from an earlier invocation, then leaves traces of its
    /// own: a global counter, a static buffer, and fresh pages grown past the allocator. Logs
    /// `remember seen=<counter> static_dirty=<bool> grown_dirty=<bool>`; a fresh instance per
    /// invocation (however the host resets its slots) logs `seen=0 static_dirty=false
    /// grown_dirty=false` every time.
    Remember,
    /// A noisy neighbour: burns its fuel, sleeps to the wall-clock limit, bombs memory or floods
    /// effects, picked by the lead's email (the digit before `@`, modulo 4).
    Hostile,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    events: u64,
    /// Ballast for `big-state`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pad: String,
}

impl Plugin for TestGuest {
    type Config = Config;
    type State = State;

    fn info() -> PluginInfo {
        funnel_sdk::info(
            "test-guest",
            "0.1.0",
            "Behaves as its config says, well or badly",
            &[Capability::Email, Capability::Sms, Capability::Timers, Capability::Lists, Capability::Coupons],
        )
    }

    fn handle(call: Call<'_, Config>, state: &mut State) -> Result<Next, String> {
        state.events += 1;
        match call.config.mode {
            Mode::Count => Ok(Next::Continue),
            Mode::Remember => {
                host::log(LogLevel::Info, &remember());
                Ok(Next::Continue)
            }
            Mode::Roundtrip => roundtrip(&call),
            Mode::ShortTimer => {
                if let Event::Timer(t) = &call.event {
                    host::log(LogLevel::Info, &format!("timer {} late_ms={}", t.tag, t.late_ms));
                } else {
                    host::schedule(Duration::from_secs(1), "short").map_err(|e| e.to_string())?;
                }
                Ok(Next::Continue)
            }
            Mode::Loop => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Mode::SleepyLoop => loop {
                std::hint::black_box(());
            },
            Mode::MemoryBomb => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Panic => panic!("test guest panics on purpose"),
            Mode::Recursion => {
                std::hint::black_box(recurse(1));
                Ok(Next::Continue)
            }
            Mode::LogFlood => {
                let line = "x".repeat(1000);
                for _ in 0..1_000 {
                    host::log(LogLevel::Info, &line);
                    println!("{line}");
                }
                Ok(Next::Continue)
            }
            Mode::EffectFlood => loop {
                let email = host::Email::new("flood", "<p>flood</p>", "flood");
                host::send_email(&email).map_err(|e| e.to_string())?;
            },
            Mode::Fail => {
                let email = host::Email::new("never", "<p>never</p>", "never");
                host::send_email(&email).map_err(|e| e.to_string())?;
                host::schedule(Duration::from_mins(5), "never").map_err(|e| e.to_string())?;
                host::add_to_list("never").map_err(|e| e.to_string())?;
                Err("failing on purpose after recording an email, a timer and a list change".to_string())
            }
            Mode::RandomEffects => random_effects(call.config.seed ^ state.events.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            Mode::Hostile => {
                let digit =
                    call.lead.email.split('@').next().and_then(|l| l.chars().last()).and_then(|c| c.to_digit(10));
                let mode = [Mode::Loop, Mode::SleepyLoop, Mode::MemoryBomb, Mode::EffectFlood]
                    [digit.unwrap_or(0) as usize % 4];
                let call = Call { config: &Config { mode, seed: 0 }, ..call };
                Self::handle(call, state)
            }
            Mode::FlakyFirstSecond => {
                if call.now_ms < call.lead.captured_at_ms + 1000 {
                    return Err("failing on purpose during the lead's first second".to_string());
                }
                host::log(LogLevel::Info, &format!("event={}", event_name(&call.event)));
                Ok(Next::Continue)
            }
            Mode::ControlChars => {
                let email = host::Email::new("Hi\u{0}there", "<p>ok</p>", "cc-email");
                host::log(LogLevel::Info, &format!("cc email-subject={:?}", host::send_email(&email).map(|_| "ok")));
                let email = host::Email::new("Hi", "<p>a\u{0}b</p>", "cc-email");
                host::log(LogLevel::Info, &format!("cc email-html={:?}", host::send_email(&email).map(|_| "ok")));
                let email = host::Email::new("Hi", "<p>ok</p>", "cc\u{0}tag");
                host::log(LogLevel::Info, &format!("cc email-tag={:?}", host::send_email(&email).map(|_| "ok")));
                let sms = host::send_sms("a\u{0}b", "cc-sms", MessageKind::Transactional);
                host::log(LogLevel::Info, &format!("cc sms={:?}", sms.map(|_| "ok")));
                let timer = host::schedule(Duration::from_mins(5), "t\u{1}");
                host::log(LogLevel::Info, &format!("cc timer={:?}", timer.map(|_| "ok")));
                host::log(LogLevel::Info, "cc log with a NUL \u{0} inside");
                Ok(Next::Continue)
            }
            Mode::NulError => Err("failing with a NUL \u{0} inside".to_string()),
            Mode::LongError => Err("e".repeat(100_000)),
            Mode::EmptyLogs => {
                for _ in 0..1_000 {
                    host::log(LogLevel::Info, "");
                }
                Ok(Next::Continue)
            }
            Mode::BigState => {
                state.pad = "s".repeat(100_000);
                Ok(Next::Continue)
            }
            Mode::UniqueAndSplit => {
                for _ in 0..2 {
                    let unique = host::unique_coupon().map(|c| format!("{}/{}", c.code, c.discount_percent));
                    host::log(LogLevel::Info, &format!("unique={unique:?}"));
                    let split = host::choose_variant("s", &[("a", 1), ("b", 1)]);
                    host::log(LogLevel::Info, &format!("split={split:?}"));
                }
                let bad = host::choose_variant("s2", &[("a", 0), ("b", 0)]);
                host::log(LogLevel::Info, &format!("bad-split={bad:?}"));
                let email = funnel_sdk::host::Email::new("Cupom", "<p>{{coupon_code}}</p>", "coupon");
                host::send_email(&email).map_err(|e| e.to_string())?;
                Ok(Next::Continue)
            }
            Mode::TimerFlood => {
                for i in 0..15 {
                    if let Err(e) = host::schedule(Duration::from_mins(60), &format!("flood-{i}")) {
                        host::log(LogLevel::Info, &format!("timers refused={e:?}"));
                        return Ok(Next::Continue);
                    }
                }
                host::log(LogLevel::Info, "timers ok");
                Ok(Next::Continue)
            }
        }
    }
}

/// Bytes of the static buffer `remember` checks and fills.
const TRACE_BYTES: usize = 256 * 1024;
static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static mut TRACE: [u8; TRACE_BYTES] = [0; TRACE_BYTES];

/// See [`Mode::Remember`].
fn remember() -> String {
    let seen = SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: one thread; volatile so the reads and writes are not folded away.
    let trace = std::ptr::addr_of_mut!(TRACE).cast::<u8>();
    let static_dirty = (0..TRACE_BYTES).any(|i| unsafe { trace.add(i).read_volatile() } != 0);
    for i in 0..TRACE_BYTES {
        unsafe { trace.add(i).write_volatile(0xAB) };
    }
    let grown_dirty = grow_and_mark();
    format!("remember seen={seen} static_dirty={static_dirty} grown_dirty={grown_dirty}")
}

/// Grow linear memory by 16 pages past what the allocator holds, say whether any of their
/// bytes is not zero, and mark them.
#[cfg(target_arch = "wasm32")]
fn grow_and_mark() -> bool {
    const PAGES: usize = 16;
    let old = core::arch::wasm32::memory_grow(0, PAGES);
    if old == usize::MAX {
        return true;
    }
    let base = (old * 65536) as *mut u8;
    // SAFETY: the pages were just grown and nothing else knows of them.
    let dirty = (0..PAGES * 65536).any(|i| unsafe { base.add(i).read_volatile() } != 0);
    for i in (0..PAGES * 65536).step_by(64) {
        unsafe { base.add(i).write_volatile(0xCD) };
    }
    dirty
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_and_mark() -> bool {
    false
}

/// A small xorshift generator: the guest has no `rand` and needs none.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A string that is sometimes empty, sometimes long, with control characters, template
    /// syntax, markup and multi-byte characters.
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Ana",
            " ",
            "\0",
            "\r\n",
            "\t",
            "\u{7f}",
            "ç",
            "🙂",
            "{{",
            "}}",
            "{{first_name}}",
            "{{checkout_url}}",
            "{% if %}",
            "{{ name | upper }}",
            "<p>",
            "</p>",
            "<script>",
            "@",
            "\"",
            "'",
            "&amp;",
            "\u{202e}",
            ".",
        ];
        let len = match self.below(10) {
            0 => 0,
            1 => 2_000 + self.below(200_000) as usize,
            _ => self.below(12) as usize,
        };
        let mut out = String::new();
        while out.len() < len {
            out.push_str(PIECES[self.below(PIECES.len() as u64) as usize]);
            if len > 100 {
                out.push_str(&"x".repeat(self.below(4_000) as usize));
            }
        }
        out
    }
}

/// Random capability calls, then a random outcome (continue, end, or an error string).
fn random_effects(seed: u64) -> Result<Next, String> {
    let mut rng = Rng(seed | 1);
    let mut timers = vec!["not-a-timer".to_string()];
    for _ in 0..rng.below(12) {
        let _ = match rng.below(11) {
            0 | 1 => {
                let mut email = host::Email::new(&rng.text(), &rng.text(), &rng.text());
                email.text = (rng.below(2) == 0).then(|| rng.text());
                email.kind = if rng.below(2) == 0 { MessageKind::Recovery } else { MessageKind::Transactional };
                host::send_email(&email).map(drop)
            }
            2 => host::send_sms(&rng.text(), &rng.text(), MessageKind::Recovery).map(drop),
            3 | 4 => {
                let after = match rng.below(4) {
                    0 => 0,
                    1 => u64::MAX,
                    _ => rng.below(3_600_000),
                };
                host::schedule(Duration::from_millis(after), &rng.text()).map(|id| timers.push(id))
            }
            5 => {
                host::cancel(&timers[rng.below(timers.len() as u64) as usize]);
                Ok(())
            }
            6 => host::add_to_list(&rng.text()),
            7 => host::remove_from_list(&rng.text()),
            8 => {
                let _ = (host::lists(), host::coupon(), host::messages());
                Ok(())
            }
            9 => {
                host::cancel_all();
                Ok(())
            }
            _ => {
                let level = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error][rng.below(4) as usize];
                host::log(level, &rng.text());
                Ok(())
            }
        };
    }
    match rng.below(4) {
        0 => Ok(Next::End),
        1 => Err(rng.text()),
        _ => Ok(Next::Continue),
    }
}

/// The kind of an event, one word.
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Captured => "captured",
        Event::Updated => "updated",
        Event::Purchased(_) => "purchased",
        Event::Refunded => "refunded",
        Event::Clicked(_) => "clicked",
        Event::Opened(_) => "opened",
        Event::Unsubscribed => "unsubscribed",
        Event::Bounced(_) => "bounced",
        Event::Timer(_) => "timer",
    }
}

fn recurse(depth: u64) -> u64 {
    // The exit is never reached; it only keeps the compiler from proving the recursion endless.
    if depth == u64::MAX {
        return 0;
    }
    // Small frames on the wasm stack (no shadow-stack array), so the engine's stack limit is
    // what stops it rather than running off the end of linear memory.
    recurse(depth + 1).wrapping_add(std::hint::black_box(depth))
}

/// Exercise each capability and log what it returned, so the host test can check the round trip.
fn roundtrip(call: &Call<'_, Config>) -> Result<Next, String> {
    let event = match &call.event {
        Event::Captured => "captured".to_string(),
        Event::Timer(t) => format!("timer:{}:{}", t.tag, t.late_ms),
        Event::Clicked(id) => format!("clicked:{id}"),
        Event::Purchased(m) => format!("purchased:{:?}", m.as_ref().map(|m| m.amount_cents)),
        other => format!("{other:?}"),
    };
    host::log(
        LogLevel::Info,
        &format!("event={event} now={} lead={} email={}", call.now_ms, call.lead.id, call.lead.email),
    );
    let mut email = host::Email::new("Hi {{first_name}}", "<p>Back: {{checkout_url}}</p>", "rt-email");
    email.text = Some("Back: {{checkout_url}}".to_string());
    let email_id = host::send_email(&email).map_err(|e| e.to_string())?;
    let sms = host::send_sms("Hi {{first_name}}", "rt-sms", MessageKind::Transactional);
    let timer = host::schedule(Duration::from_mins(20), "rt-timer").map_err(|e| e.to_string())?;
    let doomed = host::schedule(Duration::from_hours(1), "rt-cancelled").map_err(|e| e.to_string())?;
    host::cancel(&doomed);
    host::add_to_list("vip").map_err(|e| e.to_string())?;
    host::add_to_list("temp").map_err(|e| e.to_string())?;
    host::remove_from_list("temp").map_err(|e| e.to_string())?;
    let lists = host::lists();
    let coupon = host::coupon().map(|c| format!("{}:{}", c.code, c.discount_percent));
    let messages: Vec<String> =
        host::messages().iter().map(|m| format!("{}:{:?}:{}", m.tag, m.status, m.clicked)).collect();
    host::log(
        LogLevel::Info,
        &format!(
            "email={email_id} sms={} timer={timer} lists={lists:?} coupon={coupon:?} messages={messages:?}",
            match &sms {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{e:?}"),
            }
        ),
    );
    println!("hello from stdout");
    Ok(Next::Continue)
}

funnel_sdk::export_plugin!(TestGuest);
