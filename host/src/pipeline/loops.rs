//! `serve`'s engine as independent tasks: timers, dispatch, delivery, webhooks and the periodic jobs each
//! run in a task of their own, woken by a [`Notify`] (new work) and by a tick (work that
//! becomes due with time: retries, leases, timers). A step that fails is logged and tried again
//! at the next wake-up; a step that panics is caught at the task boundary. None waits for
//! another: an SMTP server that holds delivery for minutes leaves dispatch and timers running,
//! and a dispatch step stuck on a slow plugin leaves queued messages going out.
//! ([`Pipeline::settle`] runs the same steps one after the other, for tests and `simulate`.)
//!
//! [`Loops::shutdown`] (on SIGTERM) stops claiming, lets each loop finish or give back what it
//! holds (leads back to the queue, unsent messages back to the outbox), and gives up on a step
//! still running at its grace deadline: whatever it holds is left to its lease.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::Pipeline;
use crate::scheduler::periodic::PeriodicJobs;
use crate::store::StoreError;

/// The longest a loop sleeps without a notification: timers and retries become due with
/// time alone, so each loop looks at least this often.
const TICK: Duration = Duration::from_secs(1);

/// How long a stopping webhook loop waits for its requests in flight (within `serve`'s 8 s
/// grace); one still running after it is dropped, and its lease hands it to the next start.
const WEBHOOK_GRACE: Duration = Duration::from_secs(5);

/// What wakes each loop early: new events (the API, fired timers) wake dispatch; new
/// messages (a handled event) wake delivery.
#[derive(Default)]
pub struct Wakeups {
    pub dispatch: Arc<Notify>,
    pub delivery: Arc<Notify>,
}

/// The running loops of one `serve`.
pub struct Loops {
    pipeline: Arc<Pipeline>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Loops {
    /// Start the loops of `pipeline`; `dispatch` is the notification the API sends when it
    /// accepts events.
    pub fn start(pipeline: Arc<Pipeline>, dispatch: Arc<Notify>, jobs: PeriodicJobs) -> Loops {
        // Delivery hears of each lead handled, not only of a drain's end: a drain may run
        // long while a hostile producer's leads hit their limits one after another.
        let wake = Arc::new(Wakeups { dispatch, delivery: pipeline.dispatcher.handled_work() });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        {
            let (p, w) = (pipeline.clone(), wake.clone());
            tasks.push(tokio::spawn(run_loop("timers", None, stopped.clone(), move || {
                let (p, w) = (p.clone(), w.clone());
                async move {
                    let fired = p.scheduler.tick().await?.fired;
                    if fired > 0 {
                        w.dispatch.notify_one();
                    }
                    Ok(())
                }
            })));
        }
        {
            let (p, w) = (pipeline.clone(), wake.clone());
            tasks.push(tokio::spawn(run_loop("dispatch", Some(wake.dispatch.clone()), stopped.clone(), move || {
                let (p, w) = (p.clone(), w.clone());
                async move {
                    if p.dispatcher.drain().await? > 0 {
                        w.delivery.notify_one();
                    }
                    Ok(())
                }
            })));
        }
        {
            let p = pipeline.clone();
            tasks.push(tokio::spawn(run_loop("delivery", Some(wake.delivery.clone()), stopped.clone(), move || {
                let p = p.clone();
                async move { p.deliverer.deliver_due().await.map(|_| ()) }
            })));
        }
        {
            // Each request runs on a task of its own (see `webhooks::sender`): a step only claims
            // and starts them, so a hanging receiver never holds this loop. On the way out the
            // requests in flight finish (each within its deadline) before the loop ends.
            let sender = pipeline.webhooks.clone();
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                let s = sender.clone();
                run_loop("webhooks", Some(sender.wakeup()), stopped, move || {
                    let s = s.clone();
                    async move { s.pump().await.map(|_| ()) }
                })
                .await;
                sender.wait_idle(WEBHOOK_GRACE).await;
            }));
        }
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        let p = pipeline.clone();
        tasks.push(tokio::spawn(run_loop("periodic jobs", None, stopped, move || {
            let (p, jobs) = (p.clone(), jobs.clone());
            async move {
                jobs.lock().await.run_due(&p.store, p.clock.now_ms()).await;
                Ok(())
            }
        })));
        Loops { pipeline, tasks, stop }
    }

    /// Stop: no new claims; each loop ends after its current step, which finishes what it
    /// holds or gives it back. A loop still busy after `grace` is abandoned (its work stays
    /// leased, and another process or the next start takes it when the lease runs out).
    /// Returns whether every loop ended in time.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.pipeline.stop();
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let mut clean = true;
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
                clean = false;
            }
        }
        clean
    }
}

/// Run `step` over and over: each run in a task of its own (a panic ends that run, not the
/// loop), then wait for `wake` or the tick.
async fn run_loop<F, Fut>(name: &'static str, wake: Option<Arc<Notify>>, mut stopped: watch::Receiver<bool>, step: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
{
    while !*stopped.borrow() {
        report(name, tokio::spawn(step()).await);
        let woken = async {
            match &wake {
                Some(wake) => wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Log how a step ended, if badly.
fn report(name: &'static str, ended: Result<Result<(), StoreError>, tokio::task::JoinError>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(task = name, error = %e, "engine step failed; trying again at the next tick"),
        Err(e) => tracing::error!(task = name, error = %e, "engine step panicked; trying again at the next tick"),
    }
}
