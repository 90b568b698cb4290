//! The simulated dispatch queue: FIFO lanes in memory that the simulator can flush or make deliver twice.

use crate::queue::{Delivery, DispatchQueue, QueueError};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Default)]
struct Lanes {
    /// (tenant, lane) → task ids, oldest first.
    lanes: BTreeMap<(String, String), VecDeque<Uuid>>,
    /// Entries handed out, for delivery handles.
    delivered: u64,
    /// While set, every published entry is enqueued twice (a redelivery after a lost ack).
    duplicate: bool,
}

/// A deterministic stand-in for Redis Streams: same operations, same order, same answers.
#[derive(Debug, Default)]
pub struct SimQueue {
    inner: Mutex<Lanes>,
}

impl SimQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loses every entry, as Redis does on a restart without persistence or a `FLUSHALL`.
    pub fn flush(&self) -> usize {
        let mut q = self.lock();
        let n = q.lanes.values().map(VecDeque::len).sum();
        q.lanes.clear();
        n
    }

    /// Turns duplicate delivery on or off.
    pub fn set_duplicate(&self, on: bool) {
        self.lock().duplicate = on;
    }
}

#[async_trait::async_trait]
impl DispatchQueue for SimQueue {
    async fn publish(&self, tenant: &str, items: &[(String, Uuid)]) -> Result<(), QueueError> {
        let mut q = self.lock();
        let copies = if q.duplicate { 2 } else { 1 };
        for (lane, id) in items {
            let entries = q.lanes.entry((tenant.to_owned(), lane.clone())).or_default();
            for _ in 0..copies {
                entries.push_back(*id);
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        tenant: &str,
        task_types: &[String],
        _consumer: &str,
        max: usize,
        _block: Duration,
    ) -> Result<Vec<Delivery>, QueueError> {
        let mut q = self.lock();
        let mut out = Vec::new();
        for lane in task_types {
            while out.len() < max {
                let Some(id) = q.lanes.get_mut(&(tenant.to_owned(), lane.clone())).and_then(VecDeque::pop_front) else {
                    break;
                };
                q.delivered += 1;
                out.push(Delivery { task_type: lane.clone(), task_id: id, entry: q.delivered.to_string() });
            }
        }
        Ok(out)
    }

    async fn ack(&self, _tenant: &str, _deliveries: &[Delivery]) -> Result<(), QueueError> {
        Ok(())
    }

    async fn depth(&self, tenant: &str, task_type: &str) -> Result<u64, QueueError> {
        let q = self.lock();
        Ok(q.lanes.get(&(tenant.to_owned(), task_type.to_owned())).map_or(0, |l| l.len() as u64))
    }
}
