//! The dispatcher: leads claimed in batches, each lead's events one at a time, every lead's
//! outcome committed in groups. A [`Dispatcher`] claims a batch of due leads from the store's
//! lead queue (a lease, so the leads of a dead process go to another) and runs up to
//! `in_flight` of them at once as tasks (never two events of one lead). Each task handles its
//! lead's events oldest first: it loads the run and the lead (the read pool), invokes the
//! plugin in the sandbox on a blocking thread, and hands the event's outcome — state, timers,
//! messages and list changes, a skip, or a failure — to the store's group commit
//! ([`crate::store::settlements`]), which commits the outcomes of every lead settling meanwhile
//! in one transaction: each lead's lease checked, each event's writes all-or-nothing under a
//! savepoint. Then the lead goes on with its next event, is given back, or leaves the queue.
//! A plugin failure commits nothing of the plugin's; the event is retried with backoff and,
//! after [`MAX_ATTEMPTS`] (or as soon as an attempt fails exactly as the one before), parked as
//! failed in the lead's timeline, and the lead is marked `parked`. A store error while
//! handling one event (a read that fails, writes the database refuses) fails that event the
//! same way, in the same group commit as its neighbours; only a store that cannot commit stops
//! that lead, and never the other leads of the step.
//!
//! ## Layout
//! - [`plugins`]: which component serves a run.
//! - [`invocation`]: store snapshots to WIT values, effects to store writes.
//! - [`services`]: the store behind `unique-coupon` and `choose-variant` while a plugin runs.

pub(crate) mod invocation;
pub(crate) mod plugins;
pub(crate) mod services;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::runtime::wit::Coupon;
use crate::runtime::{Failure, Limit};
use crate::store::queue::LeadAfter;
use crate::store::settlements::{Outcome, Settlement};
use crate::store::snapshots::PendingEvent;
use crate::store::{Backend, Database, StoreError};
use plugins::PluginRegistry;

/// Attempts before an event is parked as failed.
pub(crate) const MAX_ATTEMPTS: i64 = 5;

/// When to try again after failed attempt number `attempt` (from 1): 1 s, 2 s, 4 s, 8 s after
/// it, then never (parked); never again for a deterministic failure.
fn retry_at(attempt: i64, deterministic: bool, now: i64) -> Option<i64> {
    (attempt < MAX_ATTEMPTS && !deterministic).then(|| now + (1000i64 << (attempt - 1).clamp(0, 20)))
}

/// Whether a failure can come from the plugin's input alone. Wasm is deterministic given its
/// input (no clock but the invocation's, a seeded randomness, no I/O), so such a failure that
/// repeats word for word on the next attempt will repeat on every one: the event is parked
/// then, after two attempts (~1 s), instead of five (~15 s). The wall clock and instantiation
/// depend on the machine and always get the full backoff; a plugin whose answer changes with
/// time (the next attempt has a later `now`) gets its retries too.
fn may_repeat(failure: &Failure) -> bool {
    match failure {
        Failure::Trap(_) | Failure::Rejected(_) => true,
        Failure::LimitExceeded(limit) => !matches!(limit, Limit::WallClock(_)),
        Failure::Instantiate(_) => false,
    }
}

/// How long a claim holds a lead before another process may take it over.
const LEASE_MS: i64 = 30_000;
/// Leads claimed in one statement: one claim's cost is shared by this many leads.
const CLAIM_BATCH: usize = 32;
/// Events of one lead handled under one claim before the lead goes to the back of the queue,
/// so a lead with a flood of events neither starves the others nor outlives its lease.
const EVENTS_PER_CLAIM: usize = 100;
/// How long a producer whose plugin hit a sandbox limit (fuel, memory, wall clock) gets one
/// lead a claim while other producers want the slots: a plugin that burns its limits on every
/// event costs each attempt's full limit, and must not spend the dispatcher's time at the
/// others' expense. Each new hit renews it.
const THROTTLE_MS: i64 = 60_000;
/// Events handled by this process between two vacuums of the queue (see `Database::tidy_queue`).
const TIDY_EVERY: u64 = 20_000;

/// Claims due leads from the queue and handles them, several at once (see the module doc).
pub struct Dispatcher {
    handler: Arc<LeadHandler>,
    /// Leads handled at once.
    in_flight: usize,
    /// Told when events are accepted or timers fire: a [`drain`](Self::drain) with a free
    /// slot claims again at once instead of waiting for a lead in flight to finish.
    new_work: Arc<tokio::sync::Notify>,
    /// Told each time a lead's events were handled (messages may be queued): delivery need
    /// not wait for a long drain to end.
    handled_work: Arc<tokio::sync::Notify>,
}

/// Handles one claimed lead's events: what each in-flight lead's task shares. Its `id` names
/// this process's leases.
struct LeadHandler {
    store: Database,
    plugins: Arc<PluginRegistry>,
    clock: Arc<dyn Clock>,
    id: String,
    /// Claims made so far: each claim's lease has its own name, so a lead whose lease ran out
    /// while this process still works on it is not held twice if this process claims it again.
    claims: AtomicU64,
    /// Events handled so far.
    handled: AtomicU64,
    public_url: String,
    /// Set by [`Dispatcher::stop`]: claim nothing more, give leads back between events.
    stopping: AtomicBool,
    /// The producer the last claim served last: the next claim starts after it (round-robin).
    cursor: Mutex<String>,
    /// Producers whose plugin hit a sandbox limit lately, until when: one lead a claim while
    /// others want the slots (see `Database::claim_leads_fair`).
    throttled: Mutex<HashMap<String, i64>>,
}

impl Dispatcher {
    pub fn new(store: Database, plugins: Arc<PluginRegistry>, clock: Arc<dyn Clock>, public_url: String) -> Self {
        // The leads in flight share commits (`store::settlements`): the more of them settle
        // while a group commits, the larger the next group. Their reads go to the read pool
        // (SQLite) or to connections of their own (PostgreSQL). Never more than half the
        // sandbox's instance pool: uploads and config checks have their own quarter
        // (`plugins::validation_slots`).
        let pool = plugins.runtime().config().max_concurrent_instances as usize;
        let in_flight = match store.backend() {
            Backend::Postgres => (pool / 2).clamp(1, 16),
            Backend::Sqlite => (pool / 2).clamp(1, 16),
        };
        let handler = LeadHandler {
            store,
            plugins,
            clock,
            id: crate::store::new_id(),
            claims: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            public_url,
            stopping: AtomicBool::new(false),
            cursor: Mutex::new(String::new()),
            throttled: Mutex::new(HashMap::new()),
        };
        Dispatcher {
            handler: Arc::new(handler),
            in_flight,
            new_work: Arc::new(tokio::sync::Notify::new()),
            handled_work: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The notification that new work is due (events accepted, timers fired); `serve` gives
    /// it to the API and the timer loop.
    pub fn new_work(&self) -> Arc<tokio::sync::Notify> {
        self.new_work.clone()
    }

    /// The notification that a lead's events were handled, as each lead is done (not when the
    /// whole drain is): `serve`'s delivery loop waits on it.
    pub fn handled_work(&self) -> Arc<tokio::sync::Notify> {
        self.handled_work.clone()
    }

    /// Stop claiming (for shutdown): a running [`drain`](Self::drain) starts no more leads
    /// (those claimed and not started go back to the queue) and each lead in flight is given
    /// back after its current event.
    pub fn stop(&self) {
        self.handler.stopping.store(true, Ordering::SeqCst);
    }

    /// Handle every event that is due now; returns how many were handled.
    ///
    /// A throttled producer (its plugin keeps hitting its limits) has at most one lead in flight
    /// here, so the other slots stay free for everyone else; and while a slot is free, news of
    /// work ([`new_work`](Self::new_work)) makes this claim again at once, so another
    /// producer's event does not wait behind a lead that runs to its limits.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut handled = 0;
        // A failed claim: stop claiming.
        let mut first_error = None;
        // A lead that failed: reported at the end.
        let mut lead_error = None;
        // Claimed leads not started yet, with their producer and the name of their lease.
        let mut claimed: VecDeque<ClaimedLead> = VecDeque::new();
        // Leads in flight per producer.
        let mut busy: HashMap<String, usize> = HashMap::new();
        let mut more = true;
        let mut tasks = JoinSet::new();
        loop {
            let h = &self.handler;
            while tasks.len() < self.in_flight && first_error.is_none() && !h.stopping.load(Ordering::SeqCst) {
                let throttled = h.throttled(h.clock.now_ms());
                let held_back =
                    |lead: &ClaimedLead| throttled.contains(&lead.producer_id) && busy.contains_key(&lead.producer_id);
                if !claimed.iter().any(|lead| !held_back(lead)) && more {
                    let lease: Arc<str> = format!("{}/{}", h.id, h.claims.fetch_add(1, Ordering::Relaxed)).into();
                    let now = h.clock.now_ms();
                    let after = h.lock_cursor().clone();
                    // A throttled producer with a lead in flight is not claimed from at all.
                    let skip: HashSet<String> = throttled.iter().filter(|p| busy.contains_key(*p)).cloned().collect();
                    let leads = h
                        .store
                        .claim_leads_fair(&lease, now, LEASE_MS, CLAIM_BATCH as i64, &after, &throttled, &skip)
                        .await;
                    match leads {
                        Ok((leads, last)) => {
                            *h.lock_cursor() = last;
                            // Claim again while claims find leads (a throttled producer's
                            // come one a claim); an empty claim ends it until a slot frees.
                            more = !leads.is_empty();
                            claimed.extend(leads.into_iter().map(|(lead_id, producer_id)| ClaimedLead {
                                lead_id,
                                producer_id,
                                lease: lease.clone(),
                            }));
                        }
                        Err(e) => first_error = Some(e),
                    }
                }
                let Some(at) = claimed.iter().position(|lead| !held_back(lead)) else { break };
                let Some(lead) = claimed.remove(at) else { break };
                *busy.entry(lead.producer_id.clone()).or_default() += 1;
                let handler = self.handler.clone();
                tasks.spawn(async move {
                    let result = handler.handle_lead(&lead.lead_id, &lead.lease).await;
                    (lead.producer_id, result)
                });
            }
            if tasks.is_empty() {
                break;
            }
            let free_slot = tasks.len() < self.in_flight && !h.stopping.load(Ordering::SeqCst);
            let joined = tokio::select! {
                biased;
                joined = tasks.join_next() => joined,
                _ = self.new_work.notified(), if free_slot => {
                    more = true;
                    continue;
                }
            };
            // A slot is free: what was held back or not due may be startable now.
            more = true;
            match joined {
                Some(Ok((producer, result))) => {
                    if let Some(n) = busy.get_mut(&producer) {
                        *n -= 1;
                        if *n == 0 {
                            busy.remove(&producer);
                        }
                    }
                    match result {
                        Ok(n) => {
                            handled += n;
                            if n > 0 {
                                self.handled_work.notify_one();
                            }
                            self.count_handled(n as u64).await;
                        }
                        // One lead's failure (its lead already given back) does not stop the
                        // others: it is reported once the step is over. Only a failed claim
                        // stops claiming.
                        Err(e) => {
                            tracing::error!(error = %e, "a lead could not be handled; it goes back to the queue");
                            lead_error.get_or_insert(e);
                        }
                    }
                }
                Some(Err(join)) => {
                    // The task's producer is unknown now; its count stays, which only holds
                    // that producer back a little in this step if it is throttled.
                    tracing::error!(error = %join, "a dispatch task failed; its lead waits for its lease");
                    lead_error.get_or_insert(StoreError::Corrupt(format!("dispatch task failed: {join}")));
                }
                None => break,
            }
        }
        // Claimed but never started (after an error, or held back): back to the queue at once.
        for lead in claimed {
            let h = &self.handler;
            if let Err(e) = h.store.release_lead(&lead.lead_id, &lead.lease, h.clock.now_ms()).await {
                tracing::warn!(lead = lead.lead_id, error = %e, "could not give a lead back; its lease will run out");
            }
        }
        match first_error.or(lead_error) {
            Some(e) => Err(e),
            None => Ok(handled),
        }
    }

    /// Count handled events; vacuum the queue every [`TIDY_EVERY`] of them.
    async fn count_handled(&self, n: u64) {
        let before = self.handler.handled.fetch_add(n, Ordering::Relaxed);
        if (before + n) / TIDY_EVERY > before / TIDY_EVERY
            && let Err(e) = self.handler.store.tidy_queue().await
        {
            tracing::warn!(error = %e, "could not vacuum the lead queue");
        }
    }
}

/// A lead this process claimed and has not started yet.
struct ClaimedLead {
    lead_id: String,
    producer_id: String,
    /// The name of the claim's lease.
    lease: Arc<str>,
}

impl LeadHandler {
    /// The round-robin cursor (a poisoned lock only means a panic mid-assignment of a string).
    fn lock_cursor(&self) -> MutexGuard<'_, String> {
        self.cursor.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The producers throttled at `now` (forgetting those whose time is up).
    fn throttled(&self, now: i64) -> HashSet<String> {
        let mut throttled = self.throttled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        throttled.retain(|_, until| *until > now);
        throttled.keys().cloned().collect()
    }

    /// Throttle `producer`: its plugin just hit a sandbox limit.
    fn throttle(&self, producer: &str, now: i64) {
        let mut throttled = self.throttled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        throttled.insert(producer.to_string(), now + THROTTLE_MS);
    }

    /// Handle the held lead's due events in order, then let it go: it leaves the queue when
    /// nothing is pending, waits for a retry, or goes to the back of the queue.
    async fn handle_lead(&self, lead_id: &str, lease: &str) -> Result<usize, StoreError> {
        let result = self.handle_events(lead_id, lease).await;
        if result.is_err() {
            // The store failed mid-way: let another try at once rather than after the lease.
            let _ = self.store.release_lead(lead_id, lease, self.clock.now_ms()).await;
        }
        result
    }

    async fn handle_events(&self, lead_id: &str, lease: &str) -> Result<usize, StoreError> {
        let mut handled = 0;
        loop {
            if handled == EVENTS_PER_CLAIM || self.stopping.load(Ordering::SeqCst) {
                self.store.release_lead(lead_id, lease, self.clock.now_ms()).await?;
                return Ok(handled);
            }
            let Some(event) = self.store.next_pending_event(lead_id).await? else {
                // Only if the queue and the events disagree (e.g. a purge raced the claim).
                self.store.settle_lead(lead_id, lease).await?;
                return Ok(handled);
            };
            if event.next_attempt_at > self.clock.now_ms() {
                self.store.release_lead(lead_id, lease, event.next_attempt_at).await?;
                return Ok(handled);
            }
            let now = self.clock.now_ms();
            let outcome = match self.handle_event(&event, now).await {
                Ok(outcome) => outcome,
                // The store could not give what the event needs (a read failed): that fails
                // this event — counted, retried with backoff, parked at the end — and the
                // lead's other events and every other lead go on.
                Err(e) => self.fail(&event, &format!("store error: {e}"), now),
            };
            let invoked = matches!(outcome, Outcome::Invoked { .. });
            let settlement = Settlement { lease: lease.to_string(), event, outcome, now };
            // Committed with other leads' events (see `store::settlements`); a database that
            // refuses this event's writes fails it in the same commit. If the store cannot even
            // commit, it is down: the error goes up and the lead back to the queue.
            let settled = self.store.settle_grouped(settlement).await?;
            if let Some(error) = &settled.refused {
                tracing::warn!(lead = lead_id, error, "an invocation's writes were refused");
                crate::metrics::INVOCATIONS_FAILED.inc();
            } else if invoked && settled.after != LeadAfter::Lost {
                crate::metrics::INVOCATIONS_OK.inc();
            }
            match settled.after {
                LeadAfter::Busy => handled += 1,
                LeadAfter::Idle => return Ok(handled + 1),
                LeadAfter::Waiting | LeadAfter::Lost => return Ok(handled),
            }
        }
    }

    /// Handle one event: what to commit for it (its writes, a skip, or its failure).
    async fn handle_event(&self, event: &PendingEvent, now: i64) -> Result<Outcome, StoreError> {
        let Some(run) = self.store.run_snapshot(&event.lead_id).await? else {
            return Ok(Outcome::Skipped { reason: "no binding serves this lead".into() });
        };
        if !run.active {
            return Ok(Outcome::Skipped { reason: "the run has ended".into() });
        }
        let lead = self.store.lead_snapshot(&event.lead_id).await?;
        let coupon = self
            .store
            .coupon(&lead.producer_id, &run.binding_scope)
            .await?
            .map(|c| Coupon { code: c.code, discount_percent: c.discount_percent });
        let builtin = run.plugin_name.as_deref().filter(|name| self.plugins.builtin_sha(name).is_some());
        let plugin = match self.plugins.runtime().cached(&run.plugin_sha256) {
            Some(plugin) => plugin,
            None => {
                // Not loaded in this process yet: an upload's bytes come from the store (a
                // built-in's are in the binary), and compiling them — 40 ms to 16 s — runs on a
                // blocking thread, once however many leads need it (`Runtime::load`).
                let bytes = match (self.plugins.is_builtin_sha(&run.plugin_sha256), builtin) {
                    (false, None) => self.store.plugin_bytes(&run.plugin_sha256).await?,
                    _ => None,
                };
                let (plugins, sha, builtin) =
                    (self.plugins.clone(), run.plugin_sha256.clone(), builtin.map(str::to_string));
                let loaded = tokio::task::spawn_blocking(move || {
                    match (plugins.by_sha(&sha, bytes.as_deref()), builtin) {
                        (Ok(plugin), _) => Ok(plugin),
                        // A built-in whose bytes changed since the run started (the run was
                        // started by an older build of funnel, before an upgrade): built-ins
                        // upgrade with the binary, and the old bytes are nowhere to be found,
                        // so this build's version serves the run.
                        (Err(_), Some(name)) => plugins.builtin(&name),
                        (Err(e), None) => Err(e),
                    }
                })
                .await;
                match loaded {
                    Ok(Ok(plugin)) => plugin,
                    Ok(Err(e)) => return Ok(self.fail(event, &e.to_string(), now)),
                    Err(join) => return Ok(self.fail(event, &format!("loading thread failed: {join}"), now)),
                }
            }
        };
        let invocation = invocation::invocation(&lead, &run, &event.event, now);
        let send_window = lead.send_window(&run);
        let mut ctx = invocation::handle_context(&lead, coupon.clone(), send_window.clone());
        ctx.services = Some(crate::runtime::Services(Arc::new(services::StoreServices {
            store: self.store.clone(),
            runtime: tokio::runtime::Handle::current(),
            lead_id: lead.id.clone(),
            producer_id: lead.producer_id.clone(),
            scope: run.binding_scope.product_plan().map(|(product, plan)| (product.to_string(), plan.to_string())),
            now,
        })));
        // The plugin runs, then its messages' templates render (a producer's code too, bounded
        // in work and size), on a blocking thread: neither holds an async worker.
        let blocking = {
            let (lead, coupon, public_url) = (lead.clone(), coupon.clone(), self.public_url.clone());
            tokio::task::spawn_blocking(move || {
                let outcome = plugin.handle(&invocation, ctx)?;
                // The lead's unique code when the plugin asked for one, else the static one.
                let writes = invocation::writes(
                    &lead,
                    (outcome.unique_coupon.as_ref().or(coupon.as_ref()), send_window.as_ref()),
                    &public_url,
                    outcome.effects,
                    outcome.refusals,
                    outcome.logs,
                    now,
                );
                Ok::<_, crate::runtime::InvokeError>((outcome.state, writes))
            })
        };
        let (state, writes) = match blocking.await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                if matches!(e.failure, Failure::LimitExceeded(_)) {
                    self.throttle(&lead.producer_id, now);
                }
                let error = e.to_string();
                // The same failure as the last attempt's: it will not go away by waiting.
                let deterministic = may_repeat(&e.failure) && event.last_error.as_deref() == Some(error.as_str());
                return Ok(self.fail_deterministic(event, &error, deterministic, now));
            }
            Err(join) => return Ok(self.fail(event, &format!("invocation thread failed: {join}"), now)),
        };
        let writes = match writes {
            Ok(writes) => writes,
            // A template past its limits fails the same way for every attempt: parked at once.
            Err(e) if e.over_limit => return Ok(self.park(event, &e.to_string())),
            Err(e) => return Ok(self.fail(event, &e.to_string(), now)),
        };
        // Should the database refuse these writes, the event fails as any failure would.
        let retry_at = retry_at(event.attempts + 1, false, now);
        Ok(Outcome::Invoked { lead: Box::new(lead), state, writes, retry_at })
    }

    /// A failure to record: retry with exponential backoff (1 s, 2 s, 4 s, …) or park it. A
    /// parked event no longer blocks the lead; one waiting for a retry does.
    fn fail(&self, event: &PendingEvent, error: &str, now: i64) -> Outcome {
        self.fail_deterministic(event, error, false, now)
    }

    /// Park the event at once: a failure no retry can change (a template past its limits).
    fn park(&self, event: &PendingEvent, error: &str) -> Outcome {
        tracing::warn!(lead = %event.lead_id, error, "event parked");
        crate::metrics::INVOCATIONS_PARKED.inc();
        Outcome::Failed { error: error.to_string(), retry_at: None }
    }

    /// [`fail`](Self::fail), parking at once a failure known to be `deterministic`: the same
    /// input failed the same way twice, so retrying it would only fail again.
    fn fail_deterministic(&self, event: &PendingEvent, error: &str, deterministic: bool, now: i64) -> Outcome {
        let attempt = event.attempts + 1;
        let retry_at = retry_at(attempt, deterministic, now);
        let error = if deterministic {
            format!("{error} (the same failure as the attempt before: not retried)")
        } else {
            error.to_string()
        };
        tracing::warn!(lead = %event.lead_id, attempt, error, "plugin invocation failed");
        let counter =
            if retry_at.is_some() { &crate::metrics::INVOCATIONS_FAILED } else { &crate::metrics::INVOCATIONS_PARKED };
        counter.inc();
        Outcome::Failed { error, retry_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_1_2_4_8_seconds_then_park_and_deterministic_ones_park_at_once() {
        let waits: Vec<Option<i64>> = (1..=5).map(|attempt| retry_at(attempt, false, 0)).collect();
        assert_eq!(waits, [Some(1000), Some(2000), Some(4000), Some(8000), None]);
        assert_eq!(retry_at(1, true, 0), None);
    }

    #[test]
    fn only_failures_the_input_alone_can_cause_are_run_again() {
        assert!(may_repeat(&Failure::Trap("panicked".into())));
        assert!(may_repeat(&Failure::Rejected("no".into())));
        assert!(may_repeat(&Failure::LimitExceeded(Limit::Fuel(1))));
        assert!(!may_repeat(&Failure::LimitExceeded(Limit::WallClock(std::time::Duration::from_secs(2)))));
        assert!(!may_repeat(&Failure::Instantiate("pool full".into())));
    }
}
