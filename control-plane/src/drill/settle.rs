//! Ending a drill: waiting for the system to settle, collecting the evidence, tearing the deployment down.

use super::DrillError;
use super::harness::Harness;
use super::invariants::Evidence;
use super::ledger::Ledger;
use super::process::Ending;
use super::snapshot::Snapshot;
use crate::store::entity::run;
use futures::StreamExt;
use sea_orm::{EntityTrait, QuerySelect};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// How long a stopped control plane may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// How long the ledgers may take to show the acks of results already sent.
const QUIESCE_DEADLINE: Duration = Duration::from_secs(15);

impl Harness {
    /// Waits until every acknowledged run is terminal (database), or the deadline.
    pub async fn settle(&mut self) -> Result<bool, DrillError> {
        let ids: HashSet<uuid::Uuid> = self.triggers.acks.iter().filter_map(|a| a.run_id.parse().ok()).collect();
        let until = Instant::now() + self.cfg.deadline;
        let db = self.db.as_ref().map(|d| d.conn.clone()).ok_or_else(|| DrillError::Database("closed".into()))?;
        loop {
            self.supervise_tick().await?;
            let rows: Result<Vec<(uuid::Uuid, String)>, _> = run::Entity::find()
                .select_only()
                .column(run::Column::Id)
                .column(run::Column::State)
                .into_tuple()
                .all(&db)
                .await;
            if let Ok(rows) = rows {
                let open = rows
                    .iter()
                    .filter(|(id, state)| {
                        ids.contains(id) && !matches!(state.as_str(), "succeeded" | "failed" | "cancelled")
                    })
                    .count();
                let s = self.monitor.latest();
                if open == 0 {
                    let at = self.progress.event("settled", format!("all {} acknowledged run(s) terminal", ids.len()));
                    self.settled_at = Some(at);
                    return Ok(true);
                }
                self.progress.status(format!(
                    "settling: {}/{} runs terminal; tasks {} leased, {} ready, {} finished",
                    ids.len() - open,
                    ids.len(),
                    s.tasks_in("leased"),
                    s.tasks_in("ready"),
                    s.finished_tasks()
                ));
            }
            if Instant::now() >= until {
                self.progress
                    .event("settled", format!("deadline of {:?} passed with runs still open", self.cfg.deadline));
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every live worker's ledger has an ack for each result it finished.
    pub async fn quiesce(&mut self) -> Result<(), DrillError> {
        let until = Instant::now() + QUIESCE_DEADLINE;
        loop {
            self.supervise_tick().await?;
            let mut pending = 0;
            for w in &mut self.workers {
                let ending = w.ending();
                if ending == Ending::Running {
                    pending += Ledger::read(&w.spec.name, w.generation, &w.ledger, ending).unacked();
                }
            }
            if pending == 0 {
                return Ok(());
            }
            if Instant::now() >= until {
                self.notes
                    .push(format!("{pending} finished result(s) still had no ack {QUIESCE_DEADLINE:?} after settling"));
                return Ok(());
            }
            self.progress.status(format!("waiting for {pending} result ack(s) to reach the worker ledgers"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every worker ledger (all generations) as it is now.
    pub fn ledgers(&mut self) -> Vec<Ledger> {
        self.retired
            .iter_mut()
            .chain(self.workers.iter_mut())
            .map(|w| {
                let ending = w.ending();
                Ledger::read(&w.spec.name, w.generation, &w.ledger, ending)
            })
            .collect()
    }

    /// Settles, waits for acks, and collects the evidence: GetRun of every acknowledged run, a
    /// database snapshot, the ledgers and what the monitor saw.
    pub async fn finish(&mut self) -> Result<Evidence, DrillError> {
        if self.settled_at.is_none() {
            self.settle().await?;
        }
        self.quiesce().await?;
        let ids: std::collections::BTreeSet<String> = self.triggers.acks.iter().map(|a| a.run_id.clone()).collect();
        self.progress.status(format!("reading {} run(s) through the API", ids.len()));
        let api = self.apis[0].clone();
        let api_runs: BTreeMap<String, Result<braid_proto::v1::Run, String>> = futures::stream::iter(ids)
            .map(|id| {
                let api = api.clone();
                async move {
                    let mut got = api.get_run(&id).await;
                    if got.is_err() {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        got = api.get_run(&id).await;
                    }
                    (id, got.map_err(|s| format!("{:?}: {}", s.code(), s.message())))
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let db = self.db.as_ref().map(|d| d.conn.clone()).ok_or_else(|| DrillError::Database("closed".into()))?;
        let snapshot = Snapshot::read(&db).await?;
        Ok(Evidence {
            acks: self.triggers.acks.clone(),
            api_runs,
            snapshot,
            ledgers: self.ledgers(),
            leases: self.monitor.leases(),
        })
    }

    /// Stops every process; drops the database unless kept; removes the work dir unless kept.
    /// Returns (database name, database kept, work dir kept).
    pub async fn teardown(&mut self, keep_dir: bool) -> (String, bool, bool) {
        for w in self.workers.iter_mut() {
            w.kill().await;
        }
        for cp in self.cps.iter_mut() {
            cp.stop(STOP_DEADLINE).await;
        }
        let (name, kept) = match self.db.take() {
            Some(db) if self.cfg.keep => (db.keep().await, true),
            Some(db) => {
                let name = db.name.clone();
                match db.drop_database().await {
                    Ok(()) => (name, false),
                    Err(e) => {
                        self.notes.push(format!("could not drop database {name}: {e}"));
                        (name, true)
                    }
                }
            }
            None => (String::new(), false),
        };
        let keep_dir = keep_dir || self.cfg.keep;
        if !keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        (name, kept, keep_dir)
    }
}
