//! The use cases: authoring, triggering and reading runs. Owns transactions and the rules.

pub mod access;
mod admission;
pub mod authoring;
pub mod cancel;
pub mod clock;
pub mod complete;
pub mod dead_letters;
pub mod dispatch;
pub mod entropy;
pub mod error;
pub mod failpoint;
pub mod feed;
pub mod gauges;
pub mod heartbeat;
pub mod insight;
pub mod page;
pub mod payloads;
pub mod quota;
mod rehydrate;
pub mod repair;
pub mod retention;
pub mod runs;
pub mod sabotage;
pub mod scheduler;
pub mod schedules;
pub mod session;
pub mod settings;
pub mod trigger;
pub mod trigger_group;

pub use clock::{Clock, SharedClock, SystemClock};
pub use entropy::{Entropy, SharedEntropy, SystemEntropy};
pub use error::EngineError;
pub use sabotage::Sabotage;
pub use settings::ExecSettings;

use crate::domain::records::Tenant;
use crate::metrics::Metrics;
use crate::queue::DispatchQueue;
use crate::store::Store;
use crate::store::dbtime::DbNow;
use std::sync::Arc;
use uuid::Uuid;

/// The engine: the rules of Braid over a store and a clock, shared by every API.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: SharedClock,
    queue: Arc<dyn DispatchQueue>,
    settings: ExecSettings,
    registry: session::Registry,
    /// Single triggers waiting to share a transaction.
    triggers: Arc<trigger_group::TriggerGroup>,
    /// Identifies this control plane in the workers table.
    node_id: String,
    /// Where the engine records what it decides (exported on `/metrics`).
    metrics: Metrics,
    /// Recently checked credentials (a revocation takes effect within [`access::CREDENTIAL_TTL`]).
    credentials: access::CredentialCache,
    /// Trigger-rate buckets and quota reads, by tenant.
    quota_state: quota::QuotaState,
    /// Where backoff jitter comes from.
    entropy: SharedEntropy,
    /// Publish in the caller's task instead of the background (the simulator: every effect of
    /// a call has happened when it returns, so the same seed gives the same order).
    inline_publish: bool,
    /// A guarantee dropped on purpose (the simulator's self-test only).
    sabotage: Sabotage,
    /// Where run inputs and task outputs over the inline limit are kept.
    payloads: crate::objects::PayloadStore,
    /// Deleted runs whose objects could not be deleted yet (retried by the next retention pass).
    undeleted: Arc<std::sync::Mutex<Vec<(String, Uuid)>>>,
}

impl Engine {
    /// An engine recording into a private metrics registry (tests; `serve` exports the engine's).
    pub fn new(store: Store, clock: SharedClock, queue: Arc<dyn DispatchQueue>, settings: ExecSettings) -> Self {
        // Registering fixed, distinct families in a fresh registry cannot fail.
        let metrics = Metrics::new().expect("the metric families are well-formed");
        Self::with_metrics(store, clock, queue, settings, metrics)
    }

    /// An engine recording into `metrics`.
    pub fn with_metrics(
        store: Store,
        clock: SharedClock,
        queue: Arc<dyn DispatchQueue>,
        settings: ExecSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            clock,
            queue,
            settings,
            registry: session::Registry::default(),
            triggers: Arc::default(),
            node_id: Uuid::now_v7().to_string(),
            metrics,
            credentials: access::CredentialCache::default(),
            quota_state: quota::QuotaState::default(),
            entropy: Arc::new(SystemEntropy),
            inline_publish: false,
            sabotage: Sabotage::None,
            payloads: crate::objects::PayloadStore::memory(),
            undeleted: Arc::default(),
        }
    }

    /// The same engine drawing its random numbers from `entropy`.
    pub fn with_entropy(mut self, entropy: SharedEntropy) -> Self {
        self.entropy = entropy;
        self
    }

    /// The same engine publishing ready tasks before a call returns rather than in the
    /// background (deterministic simulation; a server keeps publishing off the caller's path).
    pub fn with_inline_publish(mut self) -> Self {
        self.inline_publish = true;
        self
    }

    /// The same engine without one of its guarantees: for the simulator's self-test only.
    pub fn with_sabotage(mut self, sabotage: Sabotage) -> Self {
        if sabotage != Sabotage::None {
            tracing::warn!(?sabotage, "engine sabotaged on purpose: results are not to be trusted");
        }
        self.sabotage = sabotage;
        self
    }

    /// The metrics this engine records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Worker streams held by this control plane.
    pub fn registry(&self) -> &session::Registry {
        &self.registry
    }

    pub fn settings(&self) -> &ExecSettings {
        &self.settings
    }

    pub fn queue(&self) -> &Arc<dyn DispatchQueue> {
        &self.queue
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock's instant at the precision every backend keeps (PostgreSQL: microseconds),
    /// so that what the engine returns equals what it reads back later.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }

    /// "Now" for statements: the database clock on PostgreSQL, `now` on SQLite.
    fn db_now(&self, now: chrono::DateTime<chrono::Utc>) -> DbNow {
        DbNow::new(self.store.backend(), now)
    }

    /// Hands newly ready tasks to the queue after their transaction committed. A failure
    /// loses nothing: the reconciler publishes ready tasks that sat past the grace period.
    /// The publish runs in the background: a slow or unreachable Redis must not hold up the
    /// caller (a worker stream answers its results and heartbeats in order, so a publish stuck
    /// waiting for Redis would stall its heartbeats and let healthy leases expire).
    async fn publish(&self, tenant: &Tenant, items: &[(String, Uuid)]) {
        if items.is_empty() {
            return;
        }
        failpoint::after_commit(items);
        if self.inline_publish {
            if let Err(e) = self.queue.publish(tenant.as_str(), items).await {
                tracing::warn!(error = %e, count = items.len(), "publish failed; the reconciler will retry");
            }
            return;
        }
        let (queue, tenant, items) = (self.queue.clone(), tenant.clone(), items.to_vec());
        tokio::spawn(async move {
            if let Err(e) = queue.publish(tenant.as_str(), &items).await {
                tracing::warn!(error = %e, count = items.len(), "publish failed; the reconciler will retry");
            }
        });
    }
}
