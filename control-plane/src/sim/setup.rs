//! The simulated deployment: an in-memory SQLite store, virtual clock, seeded entropy, the simulated queue and engines on them.

use super::SimError;
use super::clock::{VirtualClock, epoch};
use super::entropy::Seeded;
use super::queue::SimQueue;
use crate::domain::definition::WorkflowDefinition;
use crate::engine::{Engine, ExecSettings, Sabotage};
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Lease and loop timing in simulations (virtual time, so short timings cost nothing real).
pub fn settings() -> ExecSettings {
    ExecSettings {
        reaper_interval: Duration::from_secs(1),
        reconcile_interval: Duration::from_secs(1),
        reconcile_grace: Duration::from_secs(5),
        ..ExecSettings::default().with_lease_ttl(Duration::from_secs(10))
    }
}

/// Everything the engines share.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub store: Store,
    pub clock: VirtualClock,
    pub queue: Arc<SimQueue>,
    /// One engine per simulated control plane, on the same store and queue.
    pub engines: Vec<Engine>,
}

impl Deployment {
    /// `control_planes` engines on a fresh in-memory database; the engines' jitter comes from `seed`.
    pub async fn start(
        seed: u64,
        control_planes: usize,
        settings: ExecSettings,
        sabotage: Sabotage,
    ) -> Result<Self, SimError> {
        let store = Store::connect("sqlite::memory:", 1).await.map_err(|e| SimError::Setup(e.to_string()))?;
        store.migrate().await.map_err(|e| SimError::Setup(e.to_string()))?;
        let clock = VirtualClock::starting_at(epoch());
        let queue = Arc::new(SimQueue::default());
        let entropy = Arc::new(Seeded::new(seed, 1));
        let engines = (0..control_planes.max(1))
            .map(|_| {
                Engine::new(store.clone(), Arc::new(clock.clone()), queue.clone(), settings)
                    .with_entropy(entropy.clone())
                    .with_inline_publish()
                    .with_sabotage(sabotage)
            })
            .collect();
        Ok(Self { store, clock, queue, engines })
    }

    pub async fn close(self) {
        drop(self.engines);
        if let Err(e) = self.store.close().await {
            tracing::debug!(error = %e, "closing the simulation's database");
        }
    }
}

/// The built-in workflow: a diamond, with retries.
pub fn default_workflow() -> WorkflowDefinition {
    const YAML: &str = "\
name: sim-diamond
description: The simulator's default workflow.
settings:
  default_retry:
    max_attempts: 4
    initial_backoff: 1s
    multiplier: 2.0
    max_backoff: 30s
  default_task_timeout: 1m
tasks:
  - name: extract
    task_type: sim.fetch
  - name: left
    task_type: sim.compute
    depends_on: [extract]
  - name: right
    task_type: sim.compute
    depends_on: [extract]
  - name: load
    task_type: sim.store
    depends_on: [left, right]
";
    // A constant that the tests parse: it cannot fail.
    WorkflowDefinition::from_yaml_str(YAML).expect("the built-in workflow parses")
}
