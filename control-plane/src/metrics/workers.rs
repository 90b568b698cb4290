//! Worker families (this control plane's streams): `braid_workers_connected`, `braid_worker_slots{task_type,state}`, `braid_worker_heartbeats_total`.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Slots of the streams serving one task type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSlots {
    pub free: u64,
    pub used: u64,
}

/// Handles on the worker families.
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    connected: IntGauge,
    slots: IntGaugeVec,
    heartbeats: IntCounter,
    /// Task types given a value before, so that a type whose streams left drops to 0.
    seen: Arc<Mutex<BTreeSet<String>>>,
}

impl WorkerMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connected = IntGauge::new("braid_workers_connected", "Worker streams connected to this control plane.")?;
        let slots = IntGaugeVec::new(
            Opts::new(
                "braid_worker_slots",
                "Slots of this control plane's worker streams by task type and state (free, used); \
                 a stream serving several types counts its slots under each.",
            ),
            &["task_type", "state"],
        )?;
        let heartbeats =
            IntCounter::new("braid_worker_heartbeats_total", "Heartbeats received on this control plane's streams.")?;
        registry.register(Box::new(connected.clone()))?;
        registry.register(Box::new(slots.clone()))?;
        registry.register(Box::new(heartbeats.clone()))?;
        Ok(Self { connected, slots, heartbeats, seen: Arc::default() })
    }

    /// One heartbeat received.
    pub fn heartbeat(&self) {
        self.heartbeats.inc();
    }

    /// Sets the gauges from a snapshot of the streams: how many, and slots by task type.
    pub fn set(&self, streams: usize, by_type: &BTreeMap<String, WorkerSlots>) {
        self.connected.set(i64::try_from(streams).unwrap_or(i64::MAX));
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for gone in seen.iter().filter(|t| !by_type.contains_key(*t)) {
            self.slots.with_label_values(&[gone.as_str(), "free"]).set(0);
            self.slots.with_label_values(&[gone.as_str(), "used"]).set(0);
        }
        for (task_type, s) in by_type {
            self.slots.with_label_values(&[task_type.as_str(), "free"]).set(i64::try_from(s.free).unwrap_or(i64::MAX));
            self.slots.with_label_values(&[task_type.as_str(), "used"]).set(i64::try_from(s.used).unwrap_or(i64::MAX));
            if !seen.contains(task_type) {
                seen.insert(task_type.clone());
            }
        }
    }
}
