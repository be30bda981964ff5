//! Group commit of the dispatcher's settlements: the outcomes of events of several leads —
//! an invocation's writes, a skip, a failure to retry or park — committed in **one
//! transaction**. Each lead's task queues its event's [`Settlement`]; whichever finds no
//! commit under way takes every settlement queued so far and commits them together (a
//! leader), the others wait for their answer, given only once the transaction committed. The
//! window is the previous commit: no timer, so a lone lead pays nothing.
//!
//! Inside the transaction every lead's lease is checked first (one statement for the group): a
//! lead another process took over writes nothing and is answered `Lost`. Each event's writes
//! then run under a savepoint of their own, so they stay all-or-nothing: an invocation whose
//! writes the database refuses is rolled back alone and recorded as that event's failure
//! (retried or parked) in the same commit, and its neighbours commit. A group whose
//! transaction fails as a whole (its commit refused, a deadlock) is tried again settlement by
//! settlement, so one lead never fails another. On PostgreSQL a group takes only the queue rows
//! no one else holds (`SKIP LOCKED`) and settles the others alone afterwards, so it never waits
//! while holding rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::{Executor, Row};
use tokio::sync::{Semaphore, oneshot};

use super::commit::Write;
use super::queue::LeadAfter;
use super::snapshots::{LeadSnapshot, PendingEvent};
use super::{Backend, Database, StoreError};

/// Most settlements in one group's transaction.
const MAX_GROUP: usize = 256;

/// What to write for one handled event.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The plugin answered: its writes and new state (`None`: the run ends). Should the
    /// database refuse them, the event fails instead, retried at `retry_at` (parked on `None`).
    Invoked { lead: Box<LeadSnapshot>, state: Option<Vec<u8>>, writes: Vec<Write>, retry_at: Option<i64> },
    /// Not invoked (the run ended or never existed).
    Skipped { reason: String },
    /// The invocation failed: retried at `retry_at`, parked on `None`.
    Failed { error: String, retry_at: Option<i64> },
}

/// One event's outcome, for the lead held under `lease`, as of `now`.
#[derive(Clone, Debug)]
pub struct Settlement {
    pub lease: String,
    pub event: PendingEvent,
    pub outcome: Outcome,
    pub now: i64,
}

/// What became of a settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub after: LeadAfter,
    /// Set when the database refused the invocation's writes: the event failed with this
    /// error instead (retried or parked, as its [`Outcome::Invoked`] said).
    pub refused: Option<String>,
}

type Answer = Result<Settled, StoreError>;

struct Waiting {
    settlement: Settlement,
    answer: oneshot::Sender<Answer>,
}

/// The settlements waiting for a commit, and the permits to lead one.
pub(crate) struct SettleGroup {
    queue: Mutex<Vec<Waiting>>,
    /// Groups committing at once: one on SQLite (one writer), a few on PostgreSQL.
    leaders: Arc<Semaphore>,
}

impl std::fmt::Debug for SettleGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettleGroup").finish_non_exhaustive()
    }
}

impl SettleGroup {
    pub(crate) fn new(backend: Backend) -> Self {
        let leaders = if backend == Backend::Sqlite { 1 } else { 4 };
        SettleGroup { queue: Mutex::new(Vec::new()), leaders: Arc::new(Semaphore::new(leaders)) }
    }

    fn take(&self, max: usize) -> Vec<Waiting> {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }
}

impl Database {
    /// Commit `settlement`, sharing the transaction with other leads' settlements queued
    /// meanwhile; answered once that transaction committed.
    pub async fn settle_grouped(&self, settlement: Settlement) -> Answer {
        let (answer, mut answered) = oneshot::channel();
        self.settle_group
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Waiting { settlement, answer });
        loop {
            tokio::select! {
                biased;
                result = &mut answered => {
                    // The group's task ended without answering (it panicked): whether it
                    // committed is unknown, so the lead goes back to the queue.
                    return result.unwrap_or_else(|_| Err(StoreError::Corrupt("a settling task failed".into())));
                }
                permit = self.settle_group.leaders.clone().acquire_owned() => {
                    let Ok(permit) = permit else {
                        return Err(StoreError::Corrupt("the settling group is closed".into()));
                    };
                    let group = self.settle_group.take(MAX_GROUP);
                    if group.is_empty() {
                        continue;
                    }
                    // In a task of its own: a lead task dropped while leading must not take its
                    // group's transaction down with it.
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

    /// Commit `settlements` in one transaction (see the module doc); one answer each, in order.
    /// An `Err` for the whole means nothing was committed.
    pub async fn settle_together(&self, settlements: &[Settlement]) -> Result<Vec<Answer>, StoreError> {
        self.settle_refs(&settlements.iter().collect::<Vec<_>>(), false).await
    }

    /// Commit `settlements` together. On PostgreSQL a group waits for no row lock: a lead whose
    /// queue row another transaction holds (an ingest queueing its new event) is settled alone
    /// after the group, waiting then (`wait`), so a group never holds some rows while waiting
    /// for another that a batch of ingests holds in another order (a deadlock).
    async fn settle_refs(&self, settlements: &[&Settlement], wait: bool) -> Result<Vec<Answer>, StoreError> {
        let (mut answers, deferred) = self.settle_tx(settlements, wait).await?;
        for i in deferred {
            answers[i] = self.settle_alone(settlements[i]).await;
        }
        Ok(answers)
    }

    /// One transaction of [`settle_refs`](Self::settle_refs); also says which settlements
    /// were deferred (their rows were held by another transaction).
    async fn settle_tx(
        &self,
        settlements: &[&Settlement],
        wait: bool,
    ) -> Result<(Vec<Answer>, Vec<usize>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let held = self.holders(&mut tx, settlements, wait).await?;
        let mut answers = Vec::with_capacity(settlements.len());
        let mut deferred = Vec::new();
        for (i, s) in settlements.iter().enumerate() {
            if held.get(s.event.lead_id.as_str()).map(String::as_str) != Some(s.lease.as_str()) {
                if self.backend == Backend::Postgres && !wait {
                    deferred.push(i);
                }
                answers.push(Ok(Settled { after: LeadAfter::Lost, refused: None }));
                continue;
            }
            answers.push(self.settle_one(&mut tx, s).await);
        }
        tx.commit().await?;
        Ok((answers, deferred))
    }

    /// [`settle_together`](Self::settle_together) for one settlement, waiting for its row.
    async fn settle_alone(&self, settlement: &Settlement) -> Answer {
        self.settle_tx(&[settlement], true)
            .await?
            .0
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("a settlement went unanswered".into())))
    }

    /// Lock the queue rows of the settlements' leads (PostgreSQL; SQLite's one writer already
    /// excludes everyone) and answer who holds each; without `wait`, rows another transaction
    /// holds are skipped (answered as held by nobody).
    async fn holders(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        settlements: &[&Settlement],
        wait: bool,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut leads: Vec<&str> = settlements.iter().map(|s| s.event.lead_id.as_str()).collect();
        leads.sort_unstable();
        leads.dedup();
        let mut held = HashMap::with_capacity(leads.len());
        for chunk in leads.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let lock = match (self.backend, wait) {
                (Backend::Postgres, true) => " ORDER BY lead_id FOR UPDATE",
                (Backend::Postgres, false) => " ORDER BY lead_id FOR UPDATE SKIP LOCKED",
                (Backend::Sqlite, _) => "",
            };
            let sql =
                format!("SELECT lead_id, locked_by FROM lead_queue WHERE lead_id IN ({}){lock}", marks.join(", "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for lead in chunk {
                query = query.bind(*lead);
            }
            for row in query.fetch_all(&mut **tx).await? {
                if let Some(holder) = row.try_get::<Option<String>, _>("locked_by")? {
                    held.insert(row.try_get("lead_id")?, holder);
                }
            }
        }
        Ok(held)
    }

    /// One held lead's settlement under a savepoint: all of its writes or none.
    async fn settle_one(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, s: &Settlement) -> Answer {
        savepoint(tx, "SAVEPOINT settle").await?;
        let applied = match &s.outcome {
            Outcome::Invoked { lead, state, writes, .. } => {
                self.apply_invocation(tx, &s.event, lead, state.clone(), writes, s.now).await
            }
            Outcome::Skipped { reason } => self.apply_skip(tx, &s.event, reason).await,
            Outcome::Failed { error, retry_at } => self.apply_failure(tx, &s.event, error, *retry_at, s.now).await,
        };
        match applied {
            // Not pending any more: nothing of it is kept.
            Ok(LeadAfter::Lost) => {
                savepoint(tx, "ROLLBACK TO SAVEPOINT settle").await?;
                savepoint(tx, "RELEASE SAVEPOINT settle").await?;
                Ok(Settled { after: LeadAfter::Lost, refused: None })
            }
            Ok(after) => {
                savepoint(tx, "RELEASE SAVEPOINT settle").await?;
                Ok(Settled { after, refused: None })
            }
            Err(e) => {
                savepoint(tx, "ROLLBACK TO SAVEPOINT settle").await?;
                let Outcome::Invoked { retry_at, .. } = &s.outcome else {
                    savepoint(tx, "RELEASE SAVEPOINT settle").await?;
                    return Err(e);
                };
                // The database refused this event's writes: it fails instead, in this commit.
                let error = format!("store error: {e}");
                let after = self.apply_failure(tx, &s.event, &error, *retry_at, s.now).await;
                match after {
                    Ok(after) => {
                        savepoint(tx, "RELEASE SAVEPOINT settle").await?;
                        Ok(Settled { after, refused: Some(error) })
                    }
                    Err(e) => {
                        savepoint(tx, "ROLLBACK TO SAVEPOINT settle").await?;
                        savepoint(tx, "RELEASE SAVEPOINT settle").await?;
                        Err(e)
                    }
                }
            }
        }
    }
}

async fn savepoint(tx: &mut sqlx::Transaction<'_, sqlx::Any>, statement: &'static str) -> Result<(), StoreError> {
    (&mut **tx).execute(sqlx::raw_sql(statement)).await?;
    Ok(())
}

/// Commit `group` in one transaction and answer each; on a failure of the whole, each alone.
async fn commit_group(store: &Database, group: Vec<Waiting>) {
    let settlements: Vec<&Settlement> = group.iter().map(|w| &w.settlement).collect();
    match store.settle_refs(&settlements, false).await {
        Ok(answers) => {
            for (waiting, answer) in group.into_iter().zip(answers) {
                let _ = waiting.answer.send(answer);
            }
        }
        Err(e) if group.len() == 1 => {
            if let Some(waiting) = group.into_iter().next() {
                let _ = waiting.answer.send(Err(e));
            }
        }
        Err(_) => {
            for waiting in group {
                let answer = store.settle_alone(&waiting.settlement).await;
                let _ = waiting.answer.send(answer);
            }
        }
    }
}
