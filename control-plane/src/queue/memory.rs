//! The in-process dispatch queue for `braid dev`: per (tenant, task type) a FIFO of task ids in memory.
//!
//! It loses its contents with the process, and that is fine: Postgres holds the
//! ready tasks and the reconciler re-publishes them. There is no pending list:
//! an entry is gone once read, so `ack` does nothing and a reader that dies
//! between read and lease leaves the task to the reconciler, as with Redis.

use super::{Delivery, DispatchQueue, QueueError};
use futures::future::select_all;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

/// The dispatch queue of the embedded mode (no Redis).
#[derive(Debug, Default)]
pub struct InProcessQueue {
    queues: Mutex<HashMap<(String, String), Arc<Fifo>>>,
    next_entry: AtomicU64,
    /// Which requested type a read serves first; turns on every read.
    rotation: AtomicUsize,
}

#[derive(Debug, Default)]
struct Fifo {
    items: Mutex<VecDeque<(u64, Uuid)>>,
    published: Notify,
}

/// Locks a mutex, also after a panic elsewhere: every critical section here
/// leaves the data consistent, so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn fifo(&self, tenant: &str, task_type: &str) -> Arc<Fifo> {
        let mut queues = lock(&self.queues);
        Arc::clone(queues.entry((tenant.to_owned(), task_type.to_owned())).or_default())
    }

    /// Takes up to `max` entries, one type at a time in turn, starting with a
    /// different type on every call.
    fn take(&self, fifos: &[(&str, Arc<Fifo>)], max: usize) -> Vec<Delivery> {
        let mut out = Vec::new();
        let start = self.rotation.fetch_add(1, Ordering::Relaxed);
        loop {
            let before = out.len();
            for i in 0..fifos.len() {
                if out.len() == max {
                    return out;
                }
                let (task_type, fifo) = &fifos[(start + i) % fifos.len()];
                if let Some((seq, task_id)) = lock(&fifo.items).pop_front() {
                    out.push(Delivery { task_type: (*task_type).to_owned(), task_id, entry: seq.to_string() });
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }
}

#[async_trait::async_trait]
impl DispatchQueue for InProcessQueue {
    async fn publish(&self, tenant: &str, items: &[(String, Uuid)]) -> Result<(), QueueError> {
        for (task_type, task_id) in items {
            let fifo = self.fifo(tenant, task_type);
            let seq = self.next_entry.fetch_add(1, Ordering::Relaxed);
            lock(&fifo.items).push_back((seq, *task_id));
            fifo.published.notify_waiters();
        }
        Ok(())
    }

    async fn read(
        &self,
        tenant: &str,
        task_types: &[String],
        _consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut types: Vec<&str> = Vec::with_capacity(task_types.len());
        for t in task_types {
            if !types.contains(&t.as_str()) {
                types.push(t);
            }
        }
        let fifos: Vec<(&str, Arc<Fifo>)> = types.iter().map(|t| (*t, self.fifo(tenant, t))).collect();
        let deadline = Instant::now() + block;
        loop {
            // Register for wake-ups before looking, so a publish in between is not missed.
            let mut wakes: Vec<_> = fifos.iter().map(|(_, f)| Box::pin(f.published.notified())).collect();
            for w in &mut wakes {
                w.as_mut().enable();
            }
            let got = self.take(&fifos, max);
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            if wakes.is_empty() {
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            }
            if tokio::time::timeout_at(deadline, select_all(wakes)).await.is_err() {
                return Ok(self.take(&fifos, max));
            }
        }
    }

    async fn ack(&self, _tenant: &str, _deliveries: &[Delivery]) -> Result<(), QueueError> {
        Ok(())
    }

    async fn depth(&self, tenant: &str, task_type: &str) -> Result<u64, QueueError> {
        let fifo = lock(&self.queues).get(&(tenant.to_owned(), task_type.to_owned())).cloned();
        Ok(fifo.map_or(0, |f| lock(&f.items).len() as u64))
    }
}
