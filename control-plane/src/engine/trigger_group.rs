//! Group commit of single triggers: TriggerRun calls that arrive while one group is being written share the next transaction.
//!
//! A call joins the waiting list; if no group is being written, it starts a writer (its own
//! task, so a caller that goes away strands no one) that writes everything waiting, up to
//! [`MAX_BULK_TRIGGER`] at a time, per tenant, until the list is empty. An idle system writes a
//! lone call at once; under load, calls wait for the transaction in flight and then share one,
//! so N concurrent callers cost about one commit (one WAL flush) instead of N. A group that
//! cannot be written as a whole (one request names an unknown workflow, reuses a key with a
//! different input, …) is written call by call, so every caller gets exactly its own answer.

use super::trigger::{CheckedInput, MAX_BULK_TRIGGER, Plan, TriggerOutcome, TriggerRequest, check, recheck};
use super::{Engine, EngineError};
use crate::domain::records::Tenant;
use crate::domain::state::TriggerSource;
use crate::store::StoreError;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// The calls waiting to be written, and whether a writer is at work.
#[derive(Debug, Default)]
pub struct TriggerGroup {
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    waiting: Vec<Waiting>,
    writing: bool,
}

#[derive(Debug)]
struct Waiting {
    tenant: Tenant,
    req: TriggerRequest,
    /// What the check of `req` derived, so that its input is parsed once.
    input: CheckedInput,
    reply: oneshot::Sender<Result<TriggerOutcome, EngineError>>,
}

impl TriggerGroup {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine {
    /// Creates a run of a workflow version with all its tasks, or returns the run that already
    /// holds the request's idempotency key. Concurrent calls share transactions (see the module).
    pub async fn trigger_run(&self, tenant: &Tenant, req: &TriggerRequest) -> Result<TriggerOutcome, EngineError> {
        // A request that is wrong by itself is answered at once and never joins a group.
        let input = check(req, self.payload_limits().max)?.input();
        if is_api(req) {
            self.admit_triggers(tenant, 1).await?;
        }
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut s = self.triggers.lock();
            s.waiting.push(Waiting { tenant: tenant.clone(), req: req.clone(), input, reply });
            !std::mem::replace(&mut s.writing, true)
        };
        if lead {
            let engine = self.clone();
            tokio::spawn(async move { engine.write_waiting_triggers().await });
        }
        answer.await.map_err(|_| StoreError::Unavailable("the trigger was not written: shutting down".into()))?
    }

    /// Writes what is waiting, group after group, until nothing is.
    async fn write_waiting_triggers(&self) {
        loop {
            let group: Vec<Waiting> = {
                let mut s = self.triggers.lock();
                if s.waiting.is_empty() {
                    s.writing = false;
                    return;
                }
                let n = s.waiting.len().min(MAX_BULK_TRIGGER);
                s.waiting.drain(..n).collect()
            };
            let mut by_tenant: BTreeMap<Tenant, Vec<Waiting>> = BTreeMap::new();
            for w in group {
                by_tenant.entry(w.tenant.clone()).or_default().push(w);
            }
            for (tenant, calls) in by_tenant {
                self.write_group(&tenant, calls).await;
            }
        }
    }

    async fn write_group(&self, tenant: &Tenant, calls: Vec<Waiting>) {
        if calls.len() > 1 {
            match self.trigger_together(tenant, &calls).await {
                Ok(outcomes) => {
                    for (w, outcome) in calls.into_iter().zip(outcomes) {
                        let _ = w.reply.send(Ok(outcome));
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, count = calls.len(), "a group of triggers is written call by call")
                }
            }
        }
        for w in calls {
            let outcome = match recheck(&w.req, w.input) {
                Ok(checked) => self.trigger_one(tenant, checked).await,
                Err(e) => Err(e),
            };
            let _ = w.reply.send(outcome);
        }
    }

    /// The calls of one group in one transaction; a key repeated within the group answers with
    /// the run of its first call (`created = false`), as concurrent calls would be.
    async fn trigger_together(&self, tenant: &Tenant, calls: &[Waiting]) -> Result<Vec<TriggerOutcome>, EngineError> {
        let checked = calls.iter().map(|w| recheck(&w.req, w.input.clone())).collect::<Result<Vec<_>, _>>()?;
        let (plans, created) = self.trigger_checked(tenant, &checked).await?;
        let mut out: Vec<TriggerOutcome> = Vec::with_capacity(plans.len());
        for plan in &plans {
            let outcome = match plan {
                Plan::New { run_id, .. } => {
                    let run = created.get(run_id).ok_or_else(|| StoreError::Corrupt("created run missing".into()))?;
                    TriggerOutcome { run: run.detail.clone(), created: true }
                }
                Plan::Existing(existing) => {
                    TriggerOutcome { run: self.get_run(tenant, existing.run.id).await?, created: false }
                }
                Plan::SameAs(j) => TriggerOutcome { run: out[*j].run.clone(), created: false },
            };
            out.push(outcome);
        }
        Ok(out)
    }
}

/// Whether a trigger comes from a client (counted against the tenant's trigger quotas), rather
/// than from a schedule or a redrive.
pub(super) fn is_api(req: &TriggerRequest) -> bool {
    match req.source {
        None | Some(TriggerSource::Api) => true,
        Some(TriggerSource::Schedule | TriggerSource::Redrive) => false,
    }
}
