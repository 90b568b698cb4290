//! Tenant quotas: a trigger-rate token bucket per tenant (per control plane), and counted limits on open runs, connected workers and schedules, each refused with `RESOURCE_EXHAUSTED`.

use super::{Engine, EngineError};
use crate::domain::quota::{QuotaOverrides, Quotas};
use crate::domain::records::Tenant;
use crate::store::access;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a tenant's quota overrides are trusted before they are read again.
const OVERRIDES_TTL: Duration = Duration::from_secs(2);
/// How long a counted number of open runs is trusted, while far from the limit.
const OPEN_RUNS_TTL: Duration = Duration::from_secs(1);

/// What the quota checks remember between calls, by tenant.
#[derive(Debug, Default, Clone)]
pub struct QuotaState(Arc<Mutex<HashMap<String, TenantState>>>);

#[derive(Debug)]
struct TenantState {
    quotas: Quotas,
    read_at: Instant,
    bucket: Arc<DefaultDirectRateLimiter>,
    /// Open runs as last counted, plus the runs admitted here since, and when it was counted.
    open_runs: Option<(u64, Instant)>,
}

fn bucket(q: Quotas) -> Arc<DefaultDirectRateLimiter> {
    let rate = NonZeroU32::new(q.triggers_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(q.trigger_burst).unwrap_or(rate);
    Arc::new(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)))
}

fn exhausted(message: String, retry_after: Option<Duration>) -> EngineError {
    EngineError::ResourceExhausted { message, retry_after }
}

impl Engine {
    fn quota_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TenantState>> {
        self.quota_state.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tenant's quotas (defaults with its overrides, re-read every [`OVERRIDES_TTL`]).
    pub async fn quotas_of(&self, tenant: &Tenant) -> Result<Quotas, EngineError> {
        if let Some(s) = self.quota_lock().get(tenant.as_str())
            && s.read_at.elapsed() < OVERRIDES_TTL
        {
            return Ok(s.quotas);
        }
        let quotas = self.settings.quotas.with(access::quota_overrides(self.store.conn(), tenant).await?);
        let mut map = self.quota_lock();
        match map.get_mut(tenant.as_str()) {
            Some(s) => {
                if s.quotas != quotas {
                    s.bucket = bucket(quotas);
                }
                s.quotas = quotas;
                s.read_at = Instant::now();
            }
            None => {
                let s = TenantState { quotas, read_at: Instant::now(), bucket: bucket(quotas), open_runs: None };
                map.insert(tenant.as_str().to_owned(), s);
            }
        }
        Ok(quotas)
    }

    /// Admits `n` API triggers of `tenant`, or refuses all of them: the trigger rate (a token
    /// bucket per tenant on this control plane; the answer says when to retry), then the
    /// open runs quota (counted, exact near the limit).
    pub async fn admit_triggers(&self, tenant: &Tenant, n: usize) -> Result<(), EngineError> {
        let quotas = self.quotas_of(tenant).await?;
        let want = u32::try_from(n).unwrap_or(u32::MAX);
        let Some(cells) = NonZeroU32::new(want) else { return Ok(()) };
        let limiter = self.quota_lock().get(tenant.as_str()).map(|s| s.bucket.clone());
        if let Some(limiter) = limiter {
            match limiter.check_n(cells) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    return Err(exhausted(
                        format!(
                            "tenant {:?} is over its trigger rate ({} per second, bursts of {}); retry after {} ms",
                            tenant.as_str(),
                            quotas.triggers_per_second,
                            quotas.trigger_burst,
                            wait.as_millis().max(1)
                        ),
                        Some(wait),
                    ));
                }
                Err(_) => {
                    return Err(exhausted(
                        format!(
                            "{n} triggers at once exceed tenant {:?}'s trigger burst of {}",
                            tenant.as_str(),
                            quotas.trigger_burst
                        ),
                        None,
                    ));
                }
            }
        }
        self.admit_open_runs(tenant, quotas, u64::from(want)).await
    }

    async fn admit_open_runs(&self, tenant: &Tenant, quotas: Quotas, n: u64) -> Result<(), EngineError> {
        let limit = u64::from(quotas.concurrent_runs);
        let cached = self.quota_lock().get(tenant.as_str()).and_then(|s| s.open_runs);
        // Far from the limit, a recent count (plus what was admitted since) is enough.
        let fresh = cached.filter(|(count, at)| at.elapsed() < OPEN_RUNS_TTL && (count + n) * 10 < limit * 9);
        let open = match fresh {
            Some((count, _)) => count,
            None => access::open_runs(self.store.conn(), tenant).await?,
        };
        if open + n > limit {
            return Err(exhausted(
                format!("tenant {:?} has {open} runs queued or running; its quota is {limit} at once", tenant.as_str()),
                Some(Duration::from_secs(1)),
            ));
        }
        let counted_at = fresh.map_or_else(Instant::now, |(_, at)| at);
        if let Some(s) = self.quota_lock().get_mut(tenant.as_str()) {
            s.open_runs = Some((open + n, counted_at));
        }
        Ok(())
    }

    /// Refuses a new worker stream when the tenant has its quota of connected workers.
    pub async fn admit_worker(&self, tenant: &Tenant) -> Result<(), EngineError> {
        let quotas = self.quotas_of(tenant).await?;
        let connected = self.connected_worker_count(tenant).await?;
        if connected >= u64::from(quotas.workers) {
            return Err(exhausted(
                format!(
                    "tenant {:?} has {connected} connected workers; its quota is {}",
                    tenant.as_str(),
                    quotas.workers
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Refuses a new schedule when the tenant has its quota of schedules.
    pub async fn admit_schedule(&self, tenant: &Tenant) -> Result<(), EngineError> {
        let quotas = self.quotas_of(tenant).await?;
        let have = access::schedule_count(self.store.conn(), tenant).await?;
        if have >= u64::from(quotas.schedules) {
            return Err(exhausted(
                format!("tenant {:?} has {have} schedules; its quota is {}", tenant.as_str(), quotas.schedules),
                None,
            ));
        }
        Ok(())
    }

    /// Sets a tenant's quota overrides (None: the default); `NotFound` for an unknown tenant.
    pub async fn set_tenant_quotas(&self, tenant: &str, o: QuotaOverrides) -> Result<Quotas, EngineError> {
        if !access::set_quota_overrides(self.store.conn(), tenant, o).await? {
            return Err(EngineError::NotFound(format!("tenant {tenant:?} not found")));
        }
        self.quota_lock().remove(tenant);
        self.quotas_of(&Tenant(tenant.to_owned())).await
    }
}
