//! The gauges collected periodically (queue depth and lag per task type, dead letters waiting, worker streams and slots) and the queue summary of ListQueues.

use super::{Engine, EngineError};
use crate::metrics::WorkerSlots;
use crate::store::{dbtime, gauges};
use std::collections::BTreeMap;

impl Engine {
    /// Reads the queue and dead-letter counts (over every tenant) and this control plane's
    /// worker streams, and sets their gauges. The metrics-collector task runs it every few seconds.
    pub async fn collect_gauges(&self) -> Result<(), EngineError> {
        let conn = self.store.conn();
        let mut slots: BTreeMap<String, WorkerSlots> = BTreeMap::new();
        let streams = self.registry.slots(|task_type, free, used| {
            let s = slots.entry(task_type.to_owned()).or_default();
            s.free += u64::from(free);
            s.used += used as u64;
        });
        self.metrics.workers().set(streams, &slots);
        let now = dbtime::read(conn, self.store.backend(), self.now()).await?;
        // Every type served here has a queue (empty or not), so "no worker for a queue with
        // ready tasks" and per-type rates have series to compare.
        let mut queues: BTreeMap<String, (u64, f64)> = slots.keys().map(|t| (t.clone(), (0, 0.0))).collect();
        for q in gauges::ready_queues(conn, now).await? {
            let lag = (now - q.oldest).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            let e = queues.entry(q.task_type).or_insert((0, 0.0));
            e.0 += q.depth;
            e.1 = e.1.max(lag);
        }
        self.metrics.engine().set_queues(&queues);
        self.metrics.engine().touch_task_types(queues.keys().map(String::as_str));
        let dead: BTreeMap<String, u64> =
            gauges::waiting_dead_letters(conn).await?.into_iter().fold(BTreeMap::new(), |mut m, (w, n)| {
                *m.entry(w).or_default() += n;
                m
            });
        self.metrics.engine().set_dead_letters(&dead);
        Ok(())
    }
}

/// One queue (task type) of a tenant, as ListQueues shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSummary {
    pub task_type: String,
    /// Ready and due.
    pub ready: u64,
    pub leased: u64,
    /// Age of the oldest ready and due task.
    pub lag: std::time::Duration,
    /// Connected workers (on any control plane) serving the type.
    pub workers: u32,
}

impl Engine {
    /// Every task type of `tenant` with ready or leased tasks or a connected worker, by name.
    pub async fn list_queues(&self, tenant: &crate::domain::records::Tenant) -> Result<Vec<QueueSummary>, EngineError> {
        let conn = self.store.conn();
        let now = dbtime::read(conn, self.store.backend(), self.now()).await?;
        let mut out: BTreeMap<String, QueueSummary> = BTreeMap::new();
        let entry = |t: &str| -> QueueSummary {
            QueueSummary { task_type: t.to_owned(), ready: 0, leased: 0, lag: std::time::Duration::ZERO, workers: 0 }
        };
        for q in gauges::ready_queues(conn, now).await?.into_iter().filter(|q| q.tenant == tenant.as_str()) {
            let e = out.entry(q.task_type.clone()).or_insert_with(|| entry(&q.task_type));
            e.ready += q.depth;
            e.lag = e.lag.max((now - q.oldest).to_std().unwrap_or_default());
        }
        for (t, n) in gauges::leased_by_type(conn, tenant.as_str()).await? {
            out.entry(t.clone()).or_insert_with(|| entry(&t)).leased = n;
        }
        for w in self.connected_workers(tenant).await? {
            for t in &w.task_types {
                out.entry(t.clone()).or_insert_with(|| entry(t)).workers += 1;
            }
        }
        Ok(out.into_values().collect())
    }
}
