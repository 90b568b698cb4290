//! `braid_retention_deleted_total{kind}`: rows deleted by retention passes, by kind (runs, tasks, attempts, events).

use prometheus::{IntCounterVec, Opts, Registry};

/// The kinds counted; the only label values, so the series are four.
const KINDS: [&str; 4] = ["runs", "tasks", "attempts", "events"];

/// A handle on `braid_retention_deleted_total{kind}`, given to the retention loop.
#[derive(Debug, Clone)]
pub struct RetentionMetrics {
    deleted: IntCounterVec,
}

impl RetentionMetrics {
    /// Registers the counter in `registry`, every kind at 0.
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let deleted = IntCounterVec::new(
            Opts::new("braid_retention_deleted_total", "Rows deleted by retention, by kind of row."),
            &["kind"],
        )?;
        registry.register(Box::new(deleted.clone()))?;
        for kind in KINDS {
            deleted.with_label_values(&[kind]);
        }
        Ok(Self { deleted })
    }

    /// Counts what one retention pass deleted.
    pub fn record(&self, runs: u64, tasks: u64, attempts: u64, events: u64) {
        for (kind, n) in KINDS.into_iter().zip([runs, tasks, attempts, events]) {
            self.deleted.with_label_values(&[kind]).inc_by(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;

    #[test]
    fn a_pass_shows_on_metrics() {
        let m = Metrics::new().unwrap();
        assert!(m.render().contains("braid_retention_deleted_total{kind=\"runs\"} 0"));
        let r = m.retention();
        r.record(2, 8, 9, 30);
        r.record(1, 4, 4, 15);
        let text = m.render();
        for line in [
            "braid_retention_deleted_total{kind=\"runs\"} 3",
            "braid_retention_deleted_total{kind=\"tasks\"} 12",
            "braid_retention_deleted_total{kind=\"attempts\"} 13",
            "braid_retention_deleted_total{kind=\"events\"} 45",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
