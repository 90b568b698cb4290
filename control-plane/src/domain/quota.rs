//! Per-tenant quotas: the control planes' defaults, a tenant's overrides, and the limits that result.

/// What one tenant may use at once, or per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// API triggers per second (a token bucket refilled at this rate), per control plane.
    pub triggers_per_second: u32,
    /// Triggers the bucket holds: how large a burst may be.
    pub trigger_burst: u32,
    /// Runs queued or running at once.
    pub concurrent_runs: u32,
    /// Worker streams connected at once.
    pub workers: u32,
    /// Schedules.
    pub schedules: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            triggers_per_second: 20_000,
            trigger_burst: 40_000,
            concurrent_runs: 1_000_000,
            workers: 1000,
            schedules: 10_000,
        }
    }
}

/// A tenant's own quotas; None keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaOverrides {
    pub triggers_per_second: Option<u32>,
    pub trigger_burst: Option<u32>,
    pub concurrent_runs: Option<u32>,
    pub workers: Option<u32>,
    pub schedules: Option<u32>,
}

impl Quotas {
    /// These defaults with a tenant's overrides.
    pub fn with(self, o: QuotaOverrides) -> Self {
        Self {
            triggers_per_second: o.triggers_per_second.unwrap_or(self.triggers_per_second),
            trigger_burst: o.trigger_burst.unwrap_or(self.trigger_burst),
            concurrent_runs: o.concurrent_runs.unwrap_or(self.concurrent_runs),
            workers: o.workers.unwrap_or(self.workers),
            schedules: o.schedules.unwrap_or(self.schedules),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let q = Quotas::default().with(QuotaOverrides { workers: Some(2), ..QuotaOverrides::default() });
        assert_eq!(q.workers, 2);
        assert_eq!(q.schedules, Quotas::default().schedules);
    }
}
