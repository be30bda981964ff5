//! Group commit of single-event ingests: concurrent `POST /v1/events` requests share one
//! transaction. Each request queues its event; whichever finds no commit under way takes
//! every event queued so far and commits them together (a leader), while the others wait for
//! their answer. A request is answered only after the transaction holding its event
//! committed. The window is the previous commit: no timer, so a lone request pays nothing.
//! A group that fails as a whole is tried again event by event, so one bad event never fails
//! its neighbours.

use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

use super::ingest::IngestOutcome;
use super::{Backend, Database, StoreError};
use crate::domain::PlatformEvent;

/// Most events in one group's transaction.
const MAX_GROUP: usize = 512;

type Answer = Result<IngestOutcome, StoreError>;

struct Waiting {
    event: PlatformEvent,
    now: i64,
    answer: oneshot::Sender<Answer>,
}

/// The queue of events waiting for a commit, and the permits to lead one.
pub(crate) struct IngestGroup {
    queue: Mutex<Vec<Waiting>>,
    /// Groups committing at once: one on SQLite (one writer), a few on PostgreSQL.
    leaders: Arc<Semaphore>,
}

impl std::fmt::Debug for IngestGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestGroup").finish_non_exhaustive()
    }
}

impl IngestGroup {
    pub(crate) fn new(backend: Backend) -> Self {
        let leaders = if backend == Backend::Sqlite { 1 } else { 4 };
        IngestGroup { queue: Mutex::new(Vec::new()), leaders: Arc::new(Semaphore::new(leaders)) }
    }

    fn take(&self, max: usize) -> Vec<Waiting> {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }
}

impl Database {
    /// [`Database::ingest`] sharing its commit with other requests arriving meanwhile.
    pub async fn ingest_grouped(&self, event: &PlatformEvent, now: i64) -> Answer {
        let (answer, mut answered) = oneshot::channel();
        self.group.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Waiting {
            event: event.clone(),
            now,
            answer,
        });
        loop {
            tokio::select! {
                biased;
                result = &mut answered => {
                    // The group's task ended without answering (it panicked): store it alone.
                    return match result {
                        Ok(answer) => answer,
                        Err(_) => self.ingest(event, now).await,
                    };
                }
                permit = self.group.leaders.clone().acquire_owned() => {
                    let Ok(permit) = permit else { return self.ingest(event, now).await };
                    let group = self.group.take(MAX_GROUP);
                    if group.is_empty() {
                        continue;
                    }
                    // In a task of its own: a request dropped while leading (its client went
                    // away) must not take its group's transaction down with it.
                    let store = self.clone();
                    let _ = tokio::spawn(async move {
                        commit_group(&store, group).await;
                        drop(permit);
                    })
                    .await;
                }
            }
        }
    }
}

/// Commit `group` in one transaction and answer each; on a failure of the whole, each alone.
async fn commit_group(store: &Database, group: Vec<Waiting>) {
    let events: Vec<(&PlatformEvent, i64)> = group.iter().map(|w| (&w.event, w.now)).collect();
    match store.ingest_each_at(&events).await {
        Ok(outcomes) => {
            for (waiting, outcome) in group.into_iter().zip(outcomes) {
                let _ = waiting.answer.send(Ok(outcome));
            }
        }
        Err(e) if group.len() == 1 => {
            if let Some(waiting) = group.into_iter().next() {
                let _ = waiting.answer.send(Err(e));
            }
        }
        Err(_) => {
            for waiting in group {
                let answer = store.ingest(&waiting.event, waiting.now).await;
                let _ = waiting.answer.send(answer);
            }
        }
    }
}
