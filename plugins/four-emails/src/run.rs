//! One lead's run: what each event does (start the sequence, send the due email and schedule
//! the next, or end), over a small [`Host`] trait so the whole of it runs natively in tests.
//! `lib.rs` plugs the real host capabilities in.

use funnel_sdk::host::Email;
use funnel_sdk::{Duration, Event, HostError, Lead, LogLevel, Next, TimerFired};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::policy::{self, WINDOW};

/// The host capabilities a run uses.
pub trait Host {
    fn send_email(&mut self, email: &Email) -> Result<(), HostError>;
    /// Ask for the lead's unique coupon (`{{coupon_code}}` then renders it in this event's
    /// email): `Ok(true)` given, `Ok(false)` when the scope has no pool or pattern (the static
    /// coupon is the coupon), `Err(why)` when there is none for this lead (a used-up pool).
    fn unique_coupon(&mut self) -> Result<bool, String>;
    /// Whether the binding has a static coupon.
    fn has_coupon(&mut self) -> bool;
    fn schedule(&mut self, after: Duration, tag: &str) -> Result<(), HostError>;
    fn log(&mut self, level: LogLevel, text: &str);
    /// When a recovery message sent at `at_ms` would really go out: the host holds it until
    /// the lead's send window opens (`at_ms` itself without a window).
    fn send_window_opens(&mut self, at_ms: i64) -> i64;
}

/// What the plugin remembers about a lead: the 0-based index of the email it waits to send.
/// Only the timer tagged for that email is acted on, so a duplicate or stray timer sends
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub next: usize,
}

/// Handle one event of a lead. `lead` is as the host knows it now (current price, purchased,
/// suppressed); `now_ms` is the host clock.
pub fn handle(
    config: &Config,
    lead: &Lead,
    event: &Event,
    now_ms: i64,
    state: &mut State,
    host: &mut impl Host,
) -> Result<Next, String> {
    // Exhaustive on purpose: a new event in the contract should make us decide, not fall
    // through silently.
    match event {
        Event::Captured => start(config, lead, state, host),
        Event::Timer(timer) => on_timer(config, lead, timer, now_ms, state, host),
        Event::Purchased(_) => Ok(end(host, LogLevel::Info, "bought: no more emails")),
        Event::Unsubscribed => Ok(end(host, LogLevel::Info, "unsubscribed: no more emails")),
        Event::Bounced(_) => Ok(end(host, LogLevel::Info, "an email bounced: no more emails")),
        // The price may change with `updated`; it is checked again when an email is due.
        Event::Updated | Event::Refunded | Event::Clicked(_) | Event::Opened(_) => Ok(Next::Continue),
    }
}

/// At capture: end at once if the lead cannot get any email, else wait for the first one.
fn start(config: &Config, lead: &Lead, state: &mut State, host: &mut impl Host) -> Result<Next, String> {
    if let Some(why) = stopper(config, lead) {
        return Ok(end(host, LogLevel::Info, &why));
    }
    let Some(first) = config.emails.first().filter(|_| config.enabled(0)) else {
        return Ok(end(host, LogLevel::Info, "no email is enabled in the config: nothing to send"));
    };
    schedule(host, first.after, 0)?;
    state.next = 0;
    Ok(Next::Continue)
}

/// A timer came due: send its email if everything still holds, then wait for the next one.
fn on_timer(
    config: &Config,
    lead: &Lead,
    timer: &TimerFired,
    now_ms: i64,
    state: &mut State,
    host: &mut impl Host,
) -> Result<Next, String> {
    let expected = policy::tag(state.next);
    let Some(index) = policy::index_of_tag(&timer.tag).filter(|i| *i == state.next) else {
        host.log(LogLevel::Debug, &format!("ignoring timer {:?}: waiting for {expected}", timer.tag));
        return Ok(Next::Continue);
    };
    if let Some(why) = stopper(config, lead) {
        return Ok(end(host, LogLevel::Info, &format!("{why}: {expected} not sent")));
    }
    let Some(email) = config.emails.get(index).filter(|_| config.enabled(index)) else {
        // Only if the producer edited the config under a running lead.
        return Ok(end(host, LogLevel::Info, &format!("{expected} is no longer enabled in the config: not sent")));
    };
    let deadline = lead.captured_at_ms.saturating_add(ms(WINDOW));
    if now_ms > deadline {
        // A timer delivered very late (an outage): the 72-hour window is the rule, not the timer.
        let at = since(lead.captured_at_ms, now_ms);
        return Ok(end(
            host,
            LogLevel::Warn,
            &format!("{expected} came due at {at} after capture, past the 72-hour window: not sent"),
        ));
    }
    // The host holds a recovery email due outside the lead's send window until it opens: the
    // 72-hour rule and the 5-hour gap count from when it really goes out.
    let goes_at = host.send_window_opens(now_ms).max(now_ms);
    if goes_at > deadline {
        let at = since(lead.captured_at_ms, goes_at);
        let why = format!(
            "{expected} would go out at {at} after capture (the send window opens then), past the 72-hour window: \
             disabled, no more emails"
        );
        return Ok(end(host, LogLevel::Info, &why));
    }
    let mut email = email.clone();
    if email.coupon
        && let Err(why) = host.unique_coupon()
    {
        // No code of its own for this lead: the static coupon if there is one, else the email
        // goes without its coupon line (never an empty code).
        let fallback = host.has_coupon();
        let instead = if fallback { "the static coupon instead" } else { "sent without a coupon" };
        host.log(LogLevel::Warn, &format!("{expected}: no unique coupon ({why}): {instead}"));
        email.coupon = fallback;
    }
    match host.send_email(&email.as_sent(index, config.coupon_line.as_deref())) {
        Ok(()) => {}
        Err(e @ (HostError::Suppressed | HostError::NoRecipient)) => {
            return Ok(end(host, LogLevel::Info, &format!("{expected} not sent ({e}): no more emails")));
        }
        // Anything else may pass (a cap) or needs a person: the host retries, then parks the
        // event visibly in the lead's timeline.
        Err(e) => return Err(format!("{expected}: send-email refused: {e}")),
    }
    let next = index + 1;
    let Some(following) = config.emails.get(next) else {
        return Ok(end(host, LogLevel::Info, &format!("{expected} was the last email")));
    };
    if !config.enabled(next) {
        let why = format!("{} is disabled (past the 72-hour window): no more emails", policy::tag(next));
        return Ok(end(host, LogLevel::Info, &why));
    }
    // Counted from when this email really goes out, not from the plan, so the 5-hour gap holds
    // even after a late email or one held for the send window.
    let due = goes_at.saturating_add(ms(following.after));
    if due > deadline {
        let at = since(lead.captured_at_ms, due);
        let why = format!(
            "{} would go out at {at} after capture ({expected} went out late), past the 72-hour window: no more emails",
            policy::tag(next)
        );
        return Ok(end(host, LogLevel::Info, &why));
    }
    let held = Duration::from_millis(u64::try_from(goes_at - now_ms).unwrap_or(0));
    schedule(host, following.after.saturating_add(held), next)?;
    state.next = next;
    Ok(Next::Continue)
}

/// Why this lead gets no (more) email whatever the schedule says, if so.
fn stopper(config: &Config, lead: &Lead) -> Option<String> {
    if lead.purchased {
        Some("already bought".to_string())
    } else if lead.suppressed {
        Some("the address is suppressed (unsubscribed or bounced)".to_string())
    } else {
        policy::ineligibility(lead.price.as_ref(), config.min_price_cents)
    }
}

fn schedule(host: &mut impl Host, after: Duration, index: usize) -> Result<(), String> {
    let tag = policy::tag(index);
    host.schedule(after, &tag).map_err(|e| format!("{tag}: schedule refused: {e}"))
}

fn end(host: &mut impl Host, level: LogLevel, why: &str) -> Next {
    host.log(level, why);
    Next::End
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `to - from` as an offset in hours, for log lines.
fn since(from_ms: i64, to_ms: i64) -> String {
    policy::hours(Duration::from_millis(u64::try_from(to_ms.saturating_sub(from_ms)).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use funnel_sdk::Money;
    use serde_json::{Value, json};

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    /// An arbitrary capture time, so offsets are not confused with absolute times.
    const T0: i64 = 1_800_000_000_000;

    #[derive(Debug, Clone, PartialEq)]
    enum Call {
        Email { tag: String, html: String },
        Schedule { after_ms: i64, tag: String },
        Log(LogLevel, String),
    }

    #[derive(Default)]
    struct FakeHost {
        calls: Vec<Call>,
        refuse_email: Option<HostError>,
        /// The send window: `(opens, closes)` ms after capture each day, 24 h periodic.
        window: Option<(i64, i64)>,
        /// What `unique-coupon` answers (no pool or pattern when unset).
        unique: Option<Result<bool, String>>,
        static_coupon: bool,
    }

    impl Host for FakeHost {
        fn send_email(&mut self, email: &Email) -> Result<(), HostError> {
            if let Some(e) = &self.refuse_email {
                return Err(e.clone());
            }
            self.calls.push(Call::Email { tag: email.tag.clone(), html: email.html.clone() });
            Ok(())
        }
        fn unique_coupon(&mut self) -> Result<bool, String> {
            self.unique.clone().unwrap_or(Ok(false))
        }
        fn has_coupon(&mut self) -> bool {
            self.static_coupon
        }
        fn schedule(&mut self, after: Duration, tag: &str) -> Result<(), HostError> {
            self.calls.push(Call::Schedule { after_ms: ms(after), tag: tag.to_string() });
            Ok(())
        }
        fn log(&mut self, level: LogLevel, text: &str) {
            self.calls.push(Call::Log(level, text.to_string()));
        }
        fn send_window_opens(&mut self, at_ms: i64) -> i64 {
            let Some((opens, closes)) = self.window else { return at_ms };
            let day = 24 * HOUR;
            let offset = (at_ms - T0).rem_euclid(day);
            let base = at_ms - offset;
            if (opens..closes).contains(&offset) {
                at_ms
            } else if offset < opens {
                base + opens
            } else {
                base + day + opens
            }
        }
    }

    impl FakeHost {
        fn effects(&self) -> Vec<Call> {
            self.calls.iter().filter(|c| !matches!(c, Call::Log(..))).cloned().collect()
        }
        fn logs(&self) -> Vec<String> {
            self.calls
                .iter()
                .filter_map(|c| match c {
                    Call::Log(_, text) => Some(text.clone()),
                    _ => None,
                })
                .collect()
        }
    }

    fn config(afters: &[&str]) -> Config {
        let emails: Vec<Value> =
            afters.iter().map(|a| json!({"after": a, "subject": "s", "html": "<p>h</p>"})).collect();
        funnel_sdk::parse(&json!({ "emails": emails }).to_string()).expect("parses")
    }

    fn lead(price_cents: Option<i64>) -> Lead {
        Lead {
            id: "l1".into(),
            email: "ana@example.com".into(),
            name: Some("Ana Souza".into()),
            first_name: Some("Ana".into()),
            phone: None,
            product_id: None,
            plan_id: None,
            price: price_cents.map(|c| Money { amount_cents: c, currency: "BRL".into() }),
            captured_at_ms: T0,
            purchased: false,
            suppressed: false,
        }
    }

    fn timer(tag: &str) -> Event {
        Event::Timer(TimerFired { id: "t".into(), tag: tag.into(), late_ms: 0 })
    }

    fn sched(after_ms: i64, tag: &str) -> Call {
        Call::Schedule { after_ms, tag: tag.into() }
    }

    fn sent(tag: &str) -> Call {
        Call::Email { tag: tag.into(), html: "<p>h</p>".into() }
    }

    /// One `handle` call on a fresh fake host.
    fn step(c: &Config, l: &Lead, e: Event, at: i64, state: &mut State) -> (Result<Next, String>, FakeHost) {
        let mut host = FakeHost::default();
        let next = handle(c, l, &e, T0 + at, state, &mut host);
        (next, host)
    }

    #[test]
    fn capture_of_an_eligible_lead_waits_for_the_first_email() {
        let mut state = State::default();
        let (next, host) = step(&config(&["20m", "5h"]), &lead(Some(9700)), Event::Captured, 0, &mut state);
        assert_eq!(next, Ok(Next::Continue));
        assert_eq!(host.calls, [sched(20 * MIN, "email-1")]);
        assert_eq!(state, State { next: 0 });
    }

    #[test]
    fn capture_of_a_lead_at_or_under_the_minimum_ends_at_once_saying_why() {
        for (price, why) in [
            (Some(2000), "not eligible: price R$ 20,00 is not over R$ 20,00 (min_price_cents 2000)"),
            (Some(1500), "not eligible: price R$ 15,00 is not over R$ 20,00 (min_price_cents 2000)"),
            (None, "not eligible: the checkout sent no price"),
        ] {
            let (next, host) = step(&config(&["20m"]), &lead(price), Event::Captured, 0, &mut State::default());
            assert_eq!(next, Ok(Next::End), "{price:?}");
            assert_eq!(host.calls, [Call::Log(LogLevel::Info, why.into())]);
        }
        let (next, _) = step(&config(&["20m"]), &lead(Some(2001)), Event::Captured, 0, &mut State::default());
        assert_eq!(next, Ok(Next::Continue), "R$ 20,01 is eligible");
    }

    #[test]
    fn capture_honours_a_custom_minimum() {
        let mut c = config(&["20m"]);
        c.min_price_cents = 0;
        let (next, _) = step(&c, &lead(Some(1)), Event::Captured, 0, &mut State::default());
        assert_eq!(next, Ok(Next::Continue));
        c.min_price_cents = 10_000;
        let (next, _) = step(&c, &lead(Some(9700)), Event::Captured, 0, &mut State::default());
        assert_eq!(next, Ok(Next::End));
    }

    #[test]
    fn capture_of_a_bought_or_suppressed_lead_ends() {
        let mut l = lead(Some(9700));
        l.purchased = true;
        assert_eq!(step(&config(&["20m"]), &l, Event::Captured, 0, &mut State::default()).0, Ok(Next::End));
        let mut l = lead(Some(9700));
        l.suppressed = true;
        assert_eq!(step(&config(&["20m"]), &l, Event::Captured, 0, &mut State::default()).0, Ok(Next::End));
    }

    #[test]
    fn capture_with_every_email_disabled_ends() {
        let (next, host) = step(&config(&["73h"]), &lead(Some(9700)), Event::Captured, 0, &mut State::default());
        assert_eq!(next, Ok(Next::End));
        assert!(host.effects().is_empty());
    }

    #[test]
    fn a_due_timer_sends_its_email_and_schedules_the_next_from_now() {
        let mut state = State { next: 0 };
        let (next, host) = step(&config(&["20m", "5h"]), &lead(Some(9700)), timer("email-1"), 20 * MIN, &mut state);
        assert_eq!(next, Ok(Next::Continue));
        assert_eq!(host.effects(), [sent("email-1"), sched(5 * HOUR, "email-2")]);
        assert_eq!(state, State { next: 1 });
    }

    #[test]
    fn the_last_email_ends_the_run() {
        let mut state = State { next: 1 };
        let (next, host) =
            step(&config(&["20m", "5h"]), &lead(Some(9700)), timer("email-2"), 5 * HOUR + 20 * MIN, &mut state);
        assert_eq!(next, Ok(Next::End));
        assert_eq!(host.effects(), [sent("email-2")]);
        assert_eq!(host.logs(), ["email-2 was the last email"]);
    }

    #[test]
    fn an_email_before_a_disabled_one_ends_the_run() {
        let mut state = State { next: 0 };
        let (next, host) = step(&config(&["20m", "71h41m"]), &lead(Some(9700)), timer("email-1"), 20 * MIN, &mut state);
        assert_eq!(next, Ok(Next::End));
        assert_eq!(host.effects(), [sent("email-1")]);
        assert_eq!(host.logs(), ["email-2 is disabled (past the 72-hour window): no more emails"]);
    }

    #[test]
    fn a_timer_at_exactly_72h_sends_one_a_millisecond_later_does_not() {
        let c = config(&["20m", "71h40m"]);
        let (next, host) = step(&c, &lead(Some(9700)), timer("email-2"), 72 * HOUR, &mut State { next: 1 });
        assert_eq!(next, Ok(Next::End));
        assert_eq!(host.effects(), [sent("email-2")]);

        let (next, host) = step(&c, &lead(Some(9700)), timer("email-2"), 72 * HOUR + 1, &mut State { next: 1 });
        assert_eq!(next, Ok(Next::End));
        assert!(host.effects().is_empty(), "late past the window: not sent");
        assert_eq!(
            host.calls,
            [Call::Log(
                LogLevel::Warn,
                "email-2 came due at 72h1ms after capture, past the 72-hour window: not sent".into()
            )]
        );
    }

    #[test]
    fn a_late_email_does_not_push_the_next_past_72h() {
        // email-1 planned at 20m goes out at 3h20m after an outage; email-2 (after 69h) would
        // land at 72h20m, so it is not scheduled.
        let c = config(&["20m", "69h"]);
        let (next, host) = step(&c, &lead(Some(9700)), timer("email-1"), 3 * HOUR + 20 * MIN, &mut State::default());
        assert_eq!(next, Ok(Next::End));
        assert_eq!(host.effects(), [sent("email-1")]);
        assert_eq!(
            host.logs(),
            ["email-2 would go out at 72h20m after capture (email-1 went out late), past the 72-hour window: no \
                 more emails"]
        );
        // Landing exactly on 72h is still fine.
        let (next, host) = step(&c, &lead(Some(9700)), timer("email-1"), 3 * HOUR, &mut State::default());
        assert_eq!(next, Ok(Next::Continue));
        assert_eq!(host.effects(), [sent("email-1"), sched(69 * HOUR, "email-2")]);
    }

    #[test]
    fn an_email_held_by_the_send_window_moves_the_next_one_with_it() {
        // Window 08:00-21:00 with capture at 00:00 of a day: email-1 due at 20 min goes at 8h,
        // so email-2 is scheduled 5 h after 8h, not after 20 min.
        let mut host = FakeHost { window: Some((8 * HOUR, 21 * HOUR)), ..FakeHost::default() };
        let mut state = State::default();
        let c = config(&["20m", "5h"]);
        let next = handle(&c, &lead(Some(9700)), &timer("email-1"), T0 + 20 * MIN, &mut state, &mut host);
        assert_eq!(next, Ok(Next::Continue));
        assert_eq!(host.effects(), [sent("email-1"), sched(7 * HOUR + 40 * MIN + 5 * HOUR, "email-2")]);
    }

    #[test]
    fn an_email_the_window_would_carry_past_72h_is_disabled() {
        // The window opens at 23:00 each day: email-2, due at 70h (22:00 of day 3), would go at
        // 71h: sent. Due at 71h30m (after 23:00) it would go at 95h: disabled.
        let c = config(&["20m", "5h"]);
        let mut host = FakeHost { window: Some((23 * HOUR, 24 * HOUR)), ..FakeHost::default() };
        let next = handle(&c, &lead(Some(9700)), &timer("email-2"), T0 + 70 * HOUR, &mut State { next: 1 }, &mut host);
        assert_eq!(next, Ok(Next::End));
        assert_eq!(host.effects(), [sent("email-2")]);
        let mut host = FakeHost { window: Some((8 * HOUR, 21 * HOUR)), ..FakeHost::default() };
        let next = handle(&c, &lead(Some(9700)), &timer("email-2"), T0 + 69 * HOUR, &mut State { next: 1 }, &mut host);
        assert_eq!(next, Ok(Next::End));
        assert!(host.effects().is_empty(), "69h is 21:00: held to 80h, past 72h");
        assert_eq!(
            host.logs(),
            ["email-2 would go out at 80h after capture (the send window opens then), past the 72-hour window: \
              disabled, no more emails"]
        );
    }

    #[test]
    fn stray_and_duplicate_timers_are_ignored() {
        let c = config(&["20m", "5h", "5h"]);
        for tag in ["email-1", "email-3", "email-9", "reminder", "email-0"] {
            let mut state = State { next: 1 };
            let (next, host) = step(&c, &lead(Some(9700)), timer(tag), HOUR, &mut state);
            assert_eq!(next, Ok(Next::Continue), "{tag}");
            assert!(host.effects().is_empty(), "{tag}");
            assert_eq!(state, State { next: 1 });
        }
    }

    #[test]
    fn a_purchase_unsubscribe_or_bounce_ends_the_run() {
        let c = config(&["20m", "5h"]);
        for event in [Event::Purchased(None), Event::Unsubscribed, Event::Bounced("m1".into())] {
            let (next, host) = step(&c, &lead(Some(9700)), event.clone(), HOUR, &mut State { next: 1 });
            assert_eq!(next, Ok(Next::End), "{event:?}");
            assert!(host.effects().is_empty());
        }
    }

    #[test]
    fn other_events_keep_waiting() {
        let c = config(&["20m", "5h"]);
        for event in [Event::Updated, Event::Refunded, Event::Clicked("m1".into()), Event::Opened("m1".into())] {
            let (next, host) = step(&c, &lead(Some(9700)), event.clone(), HOUR, &mut State { next: 1 });
            assert_eq!(next, Ok(Next::Continue), "{event:?}");
            assert!(host.calls.is_empty());
        }
    }

    #[test]
    fn a_due_email_is_not_sent_when_the_lead_no_longer_qualifies() {
        let c = config(&["20m", "5h"]);
        let mut bought = lead(Some(9700));
        bought.purchased = true;
        let mut suppressed = lead(Some(9700));
        suppressed.suppressed = true;
        for (l, why) in [
            (bought, "already bought: email-2 not sent"),
            (suppressed, "the address is suppressed (unsubscribed or bounced): email-2 not sent"),
            (
                lead(Some(2000)),
                "not eligible: price R$ 20,00 is not over R$ 20,00 (min_price_cents 2000): email-2 not sent",
            ),
            (lead(None), "not eligible: the checkout sent no price: email-2 not sent"),
        ] {
            let (next, host) = step(&c, &l, timer("email-2"), 5 * HOUR + 20 * MIN, &mut State { next: 1 });
            assert_eq!(next, Ok(Next::End), "{why}");
            assert_eq!(host.calls, [Call::Log(LogLevel::Info, why.into())]);
        }
    }

    #[test]
    fn a_shrunk_config_ends_the_run_instead_of_panicking() {
        let (next, host) = step(&config(&["20m"]), &lead(Some(9700)), timer("email-3"), HOUR, &mut State { next: 2 });
        assert_eq!(next, Ok(Next::End));
        assert!(host.effects().is_empty());
        let empty = Config { min_price_cents: 2000, emails: Vec::new(), coupon_line: None };
        let (next, _) = step(&empty, &lead(Some(9700)), Event::Captured, 0, &mut State::default());
        assert_eq!(next, Ok(Next::End));
    }

    #[test]
    fn a_suppressed_recipient_ends_the_run_other_refusals_are_retried() {
        let c = config(&["20m", "5h"]);
        for refusal in [HostError::Suppressed, HostError::NoRecipient] {
            let mut host = FakeHost { refuse_email: Some(refusal), ..FakeHost::default() };
            let next =
                handle(&c, &lead(Some(9700)), &timer("email-1"), T0 + 20 * MIN, &mut State::default(), &mut host);
            assert_eq!(next, Ok(Next::End));
            assert!(host.effects().is_empty(), "nothing scheduled after a refused send");
        }
        let mut host = FakeHost { refuse_email: Some(HostError::LimitReached("cap".into())), ..FakeHost::default() };
        let next = handle(&c, &lead(Some(9700)), &timer("email-1"), T0 + 20 * MIN, &mut State::default(), &mut host);
        assert!(next.as_ref().is_err_and(|e| e.starts_with("email-1: send-email refused")), "{next:?}");
    }

    #[test]
    fn a_coupon_email_carries_the_producers_coupon_line() {
        let mut c = config(&["20m"]);
        c.emails[0].coupon = true;
        c.coupon_line = Some("Use o cupom {{coupon_code}}.".into());
        let (_, host) = step(&c, &lead(Some(9700)), timer("email-1"), 20 * MIN, &mut State::default());
        assert_eq!(
            host.effects(),
            [Call::Email { tag: "email-1".into(), html: "<p>h</p><p>Use o cupom {{coupon_code}}.</p>".into() }]
        );
    }

    #[test]
    fn a_coupon_email_asks_for_the_leads_unique_code_and_falls_back_when_the_pool_is_used_up() {
        let mut c = config(&["20m"]);
        c.emails[0].coupon = true;
        c.coupon_line = Some("Cupom {{coupon_code}}.".into());
        let with_line = Call::Email { tag: "email-1".into(), html: "<p>h</p><p>Cupom {{coupon_code}}.</p>".into() };
        let run = |unique: Result<bool, String>, static_coupon: bool| {
            let mut host = FakeHost { unique: Some(unique), static_coupon, ..FakeHost::default() };
            let next =
                handle(&c, &lead(Some(9700)), &timer("email-1"), T0 + 20 * MIN, &mut State::default(), &mut host);
            assert_eq!(next, Ok(Next::End));
            host
        };
        assert_eq!(run(Ok(true), false).effects(), std::slice::from_ref(&with_line), "the lead's own code");
        assert_eq!(
            run(Ok(false), true).effects(),
            std::slice::from_ref(&with_line),
            "no pool: the static coupon, as before"
        );
        let used_up = run(Err("the pool is used up".into()), true);
        assert_eq!(used_up.effects(), [with_line], "used up: the static coupon");
        assert!(
            used_up
                .logs()
                .contains(&"email-1: no unique coupon (the pool is used up): the static coupon instead".into())
        );
        let nothing = run(Err("the pool is used up".into()), false);
        assert_eq!(nothing.effects(), [sent("email-1")], "nothing left: no coupon line, no empty code");
        assert!(
            nothing.logs().contains(&"email-1: no unique coupon (the pool is used up): sent without a coupon".into())
        );
    }

    #[test]
    fn state_round_trips_and_tolerates_an_empty_object() {
        let bytes = serde_json::to_vec(&State { next: 2 }).expect("serializes");
        assert_eq!(serde_json::from_slice::<State>(&bytes).expect("parses"), State { next: 2 });
        assert_eq!(serde_json::from_str::<State>("{}").expect("parses"), State::default());
    }

    /// Something that happens to the lead at a time after capture.
    #[derive(Clone, Copy)]
    enum Outside {
        Pays,
        Unsubscribes,
        Price(Option<i64>),
    }

    /// A whole run on a virtual clock: capture at 0, the timers the plugin asks for, the
    /// outside events, and an outage during which due timers wait until it ends. Returns when
    /// each email went out, in ms after capture.
    fn simulate(
        c: &Config,
        price: Option<i64>,
        outside: &[(i64, Outside)],
        outage: Option<(i64, i64)>,
    ) -> Vec<(i64, String)> {
        let mut l = lead(price);
        let mut state = State::default();
        let mut host = FakeHost::default();
        let mut timers: Vec<(i64, String)> = Vec::new();
        let mut outside: Vec<(i64, Outside)> = outside.to_vec();
        let mut out = Vec::new();
        let (mut now, mut event) = (0, Event::Captured);
        loop {
            let seen = host.calls.len();
            let next = handle(c, &l, &event, T0 + now, &mut state, &mut host).expect("handles");
            for call in &host.calls[seen..] {
                match call {
                    Call::Email { tag, .. } => out.push((now, tag.clone())),
                    Call::Schedule { after_ms, tag } => {
                        let mut due = now + after_ms;
                        if let Some((_, to)) = outage.filter(|(from, to)| (*from..*to).contains(&due)) {
                            due = to;
                        }
                        timers.push((due, tag.clone()));
                    }
                    Call::Log(..) => {}
                }
            }
            if next == Next::End {
                return out;
            }
            timers.sort_by_key(|(due, _)| *due);
            outside.sort_by_key(|(at, _)| *at);
            let timer_due = timers.first().map(|(due, _)| *due);
            let outside_at = outside.first().map(|(at, _)| *at);
            match (timer_due, outside_at) {
                (None, None) => return out,
                (Some(due), at) if at.is_none_or(|at| due < at) => {
                    let (due, tag) = timers.remove(0);
                    (now, event) = (due, Event::Timer(TimerFired { id: "t".into(), tag, late_ms: 0 }));
                }
                _ => {
                    let (at, what) = outside.remove(0);
                    now = at;
                    event = match what {
                        Outside::Pays => {
                            l.purchased = true;
                            Event::Purchased(None)
                        }
                        Outside::Unsubscribes => {
                            l.suppressed = true;
                            Event::Unsubscribed
                        }
                        Outside::Price(cents) => {
                            l.price = cents.map(|c| Money { amount_cents: c, currency: "BRL".into() });
                            Event::Updated
                        }
                    };
                }
            }
        }
    }

    fn at(offsets: &[(i64, &str)]) -> Vec<(i64, String)> {
        offsets.iter().map(|(t, tag)| (*t, tag.to_string())).collect()
    }

    #[test]
    fn run_four_emails_at_20m_then_every_5h() {
        let out = simulate(&config(&["20m", "5h", "5h", "5h"]), Some(9700), &[], None);
        let first = 20 * MIN;
        assert_eq!(
            out,
            at(&[
                (first, "email-1"),
                (first + 5 * HOUR, "email-2"),
                (first + 10 * HOUR, "email-3"),
                (first + 15 * HOUR, "email-4")
            ])
        );
    }

    #[test]
    fn run_sends_at_exactly_72h_and_never_sends_a_disabled_email() {
        let out = simulate(&config(&["20m", "71h40m"]), Some(9700), &[], None);
        assert_eq!(out, at(&[(20 * MIN, "email-1"), (72 * HOUR, "email-2")]));
        let out = simulate(&config(&["20m", "71h41m"]), Some(9700), &[], None);
        assert_eq!(out, at(&[(20 * MIN, "email-1")]));
        let out = simulate(&config(&["20m", "5h", "67h", "5h"]), Some(9700), &[], None);
        assert_eq!(out, at(&[(20 * MIN, "email-1"), (5 * HOUR + 20 * MIN, "email-2")]), "email-3 and -4 disabled");
    }

    #[test]
    fn run_stops_at_a_purchase_or_unsubscribe() {
        let c = config(&["20m", "5h", "5h", "5h"]);
        let out = simulate(&c, Some(9700), &[(6 * HOUR, Outside::Pays)], None);
        assert_eq!(out, at(&[(20 * MIN, "email-1"), (5 * HOUR + 20 * MIN, "email-2")]));
        let out = simulate(&c, Some(9700), &[(HOUR, Outside::Unsubscribes)], None);
        assert_eq!(out, at(&[(20 * MIN, "email-1")]));
        let out = simulate(&c, Some(9700), &[(10 * MIN, Outside::Pays)], None);
        assert!(out.is_empty());
    }

    #[test]
    fn run_rechecks_the_price_when_an_email_is_due() {
        let c = config(&["20m", "5h", "5h"]);
        let out = simulate(&c, Some(9700), &[(HOUR, Outside::Price(Some(1900)))], None);
        assert_eq!(out, at(&[(20 * MIN, "email-1")]), "cart dropped to R$ 19,00 before email-2");
        let out = simulate(
            &c,
            Some(9700),
            &[(HOUR, Outside::Price(Some(1900))), (2 * HOUR, Outside::Price(Some(2500)))],
            None,
        );
        assert_eq!(out.len(), 3, "back over R$ 20,00 by the time email-2 is due");
        let out = simulate(&c, Some(1900), &[(HOUR, Outside::Price(Some(9700)))], None);
        assert!(out.is_empty(), "not eligible at capture: the run ended then");
    }

    #[test]
    fn run_after_an_outage_keeps_the_gap_and_the_window() {
        // The host is down from 10m to 3h: email-1 goes at 3h, email-2 5h after that (not at
        // the planned 5h20m), email-3 at 13h.
        let c = config(&["20m", "5h", "5h"]);
        let out = simulate(&c, Some(9700), &[], Some((10 * MIN, 3 * HOUR)));
        assert_eq!(out, at(&[(3 * HOUR, "email-1"), (8 * HOUR, "email-2"), (13 * HOUR, "email-3")]));
        // Down past 72h: the email that came due meanwhile never goes.
        let c = config(&["20m", "71h40m"]);
        let out = simulate(&c, Some(9700), &[], Some((71 * HOUR, 80 * HOUR)));
        assert_eq!(out, at(&[(20 * MIN, "email-1")]));
    }
}
