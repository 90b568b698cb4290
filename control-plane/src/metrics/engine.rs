//! Engine families: runs, tasks, attempts, latencies, retries, leases, dead letters, queues, reconciler, cron.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, core::Collector,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Buckets of the schedule-to-start and execution histograms, in seconds (the SLO alert uses `le="1"`).
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Handles on the engine's families. Cheap to clone; recording is a label lookup and an atomic add.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    runs_started: IntCounterVec,
    runs_finished: IntCounterVec,
    tasks_finished: IntCounterVec,
    attempts: IntCounterVec,
    schedule_to_start: HistogramVec,
    execution: HistogramVec,
    retries: IntCounterVec,
    leases_expired: IntCounterVec,
    stale_results: IntCounter,
    dead_lettered: IntCounterVec,
    dead_letters: IntGaugeVec,
    queue_depth: IntGaugeVec,
    queue_lag: GaugeVec,
    republished: IntCounter,
    cron_ticks: IntCounterVec,
    /// Label values given a gauge value before, so that one absent from a collection drops to 0.
    seen_types: Arc<Mutex<BTreeSet<String>>>,
    seen_workflows: Arc<Mutex<BTreeSet<String>>>,
    /// Error types given as a label so far (at most [`MAX_ERROR_TYPES`]; later ones count as `other`).
    error_types: Arc<Mutex<BTreeSet<String>>>,
}

/// Distinct `error_type` label values per process: error types are chosen by workers, so the
/// label is bounded here (the full text is in `braid dlq list`).
pub const MAX_ERROR_TYPES: usize = 32;

/// `kind` as an `error_type` label: at most 64 characters of `[A-Za-z0-9_.:-]` (others become
/// `_`), `unknown` when empty, `other` once [`MAX_ERROR_TYPES`] distinct values were given.
fn error_type_label(seen: &Mutex<BTreeSet<String>>, kind: &str) -> String {
    let clean: String = kind
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') { c } else { '_' })
        .collect();
    let clean = if clean.is_empty() { "unknown".to_owned() } else { clean };
    let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(&clean) {
        return clean;
    }
    if seen.len() >= MAX_ERROR_TYPES {
        return "other".to_owned();
    }
    seen.insert(clean.clone());
    clean
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(r: &Registry, name: &str, help: &str) -> Result<HistogramVec, prometheus::Error> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), &["task_type"])?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn register<C: Collector + Clone + 'static>(r: &Registry, c: C) -> Result<C, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl EngineMetrics {
    pub(super) fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            runs_started: counter(r, "braid_runs_started_total", "Runs created, by workflow.", &["workflow"])?,
            runs_finished: counter(
                r,
                "braid_runs_finished_total",
                "Runs ended, by workflow and outcome (succeeded, failed, cancelled).",
                &["workflow", "outcome"],
            )?,
            tasks_finished: counter(
                r,
                "braid_tasks_finished_total",
                "Tasks ended for good, by task type and outcome (succeeded, failed = dead-lettered, cancelled, skipped).",
                &["task_type", "outcome"],
            )?,
            attempts: counter(
                r,
                "braid_task_attempts_total",
                "Attempts ended, by task type and outcome (succeeded, failed, lease_expired).",
                &["task_type", "outcome"],
            )?,
            schedule_to_start: histogram(
                r,
                "braid_task_schedule_to_start_seconds",
                "Time from a task becoming due (available_at) to its lease, by task type.",
            )?,
            execution: histogram(
                r,
                "braid_task_execution_seconds",
                "Time from a task's lease to its accepted result, by task type.",
            )?,
            retries: counter(
                r,
                "braid_task_retries_total",
                "Retries scheduled after a failed attempt.",
                &["task_type"],
            )?,
            leases_expired: counter(
                r,
                "braid_leases_expired_total",
                "Leases the reaper recovered after they expired without a result.",
                &["task_type"],
            )?,
            stale_results: register(
                r,
                IntCounter::new("braid_stale_results_total", "Results rejected because their lease was not current.")?,
            )?,
            dead_lettered: counter(
                r,
                "braid_dead_letters_total",
                "Tasks sent to the dead-letter queue, by workflow and error type (bounded: see MAX_ERROR_TYPES).",
                &["workflow", "error_type"],
            )?,
            dead_letters: register(
                r,
                IntGaugeVec::new(
                    Opts::new("braid_dead_letters", "Dead letters waiting (not redriven or purged), by workflow."),
                    &["workflow"],
                )?,
            )?,
            queue_depth: register(
                r,
                IntGaugeVec::new(
                    Opts::new("braid_queue_depth", "Ready and due tasks in the database, by task type."),
                    &["task_type"],
                )?,
            )?,
            queue_lag: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "braid_queue_lag_seconds",
                        "Age of the oldest ready and due task, by task type (0 when none).",
                    ),
                    &["task_type"],
                )?,
            )?,
            republished: register(
                r,
                IntCounter::new(
                    "braid_reconciler_republished_total",
                    "Ready tasks the reconciler published to the dispatch queue again.",
                )?,
            )?,
            cron_ticks: counter(
                r,
                "braid_cron_ticks_total",
                "Cron ticks handled, by outcome (fired, skipped, missed).",
                &["outcome"],
            )?,
            seen_types: Arc::default(),
            seen_workflows: Arc::default(),
            error_types: Arc::default(),
        };
        for outcome in ["fired", "skipped", "missed"] {
            m.cron_ticks.with_label_values(&[outcome]);
        }
        Ok(m)
    }

    pub fn run_started(&self, workflow: &str) {
        self.runs_started.with_label_values(&[workflow]).inc();
    }

    /// `outcome`: succeeded, failed or cancelled.
    pub fn run_finished(&self, workflow: &str, outcome: &str) {
        self.runs_finished.with_label_values(&[workflow, outcome]).inc();
    }

    /// `outcome`: succeeded, failed (dead-lettered), cancelled or skipped.
    pub fn task_finished(&self, task_type: &str, outcome: &str) {
        self.tasks_finished.with_label_values(&[task_type, outcome]).inc();
    }

    /// `outcome`: succeeded, failed or lease_expired.
    pub fn attempt(&self, task_type: &str, outcome: &str) {
        self.attempts.with_label_values(&[task_type, outcome]).inc();
    }

    pub fn schedule_to_start(&self, task_type: &str, seconds: f64) {
        self.schedule_to_start.with_label_values(&[task_type]).observe(seconds.max(0.0));
    }

    pub fn execution(&self, task_type: &str, seconds: f64) {
        self.execution.with_label_values(&[task_type]).observe(seconds.max(0.0));
    }

    pub fn retry(&self, task_type: &str) {
        self.retries.with_label_values(&[task_type]).inc();
    }

    pub fn lease_expired(&self, task_type: &str) {
        self.leases_expired.with_label_values(&[task_type]).inc();
    }

    pub fn stale_results(&self, n: u64) {
        self.stale_results.inc_by(n);
    }

    pub fn dead_lettered(&self, workflow: &str, error_type: &str) {
        let error_type = error_type_label(&self.error_types, error_type);
        self.dead_lettered.with_label_values(&[workflow, error_type.as_str()]).inc();
    }

    pub fn republished(&self, n: u64) {
        self.republished.inc_by(n);
    }

    /// One scheduler pass's counts.
    pub fn cron_ticks(&self, fired: u64, skipped: u64, missed: u64) {
        for (outcome, n) in [("fired", fired), ("skipped", skipped), ("missed", missed)] {
            self.cron_ticks.with_label_values(&[outcome]).inc_by(n);
        }
    }

    /// Makes the per-type counters of `task_types` exist (at 0 until something happens), so
    /// that their families show on `/metrics` before the first retry or expired lease.
    pub fn touch_task_types<'a>(&self, task_types: impl Iterator<Item = &'a str>) {
        for t in task_types {
            self.retries.with_label_values(&[t]);
            self.leases_expired.with_label_values(&[t]);
        }
    }

    /// Sets the queue gauges from one collection: (depth, lag in seconds) by task type.
    /// Types collected before and absent now drop to 0.
    pub fn set_queues(&self, by_type: &BTreeMap<String, (u64, f64)>) {
        let mut seen = self.seen_types.lock().unwrap_or_else(|p| p.into_inner());
        for gone in seen.iter().filter(|t| !by_type.contains_key(*t)) {
            self.queue_depth.with_label_values(&[gone.as_str()]).set(0);
            self.queue_lag.with_label_values(&[gone.as_str()]).set(0.0);
        }
        for (t, (depth, lag)) in by_type {
            self.queue_depth.with_label_values(&[t.as_str()]).set(i64::try_from(*depth).unwrap_or(i64::MAX));
            self.queue_lag.with_label_values(&[t.as_str()]).set(lag.max(0.0));
            if !seen.contains(t) {
                seen.insert(t.clone());
            }
        }
    }

    /// Sets the dead-letter gauge from one collection: waiting dead letters by workflow.
    pub fn set_dead_letters(&self, by_workflow: &BTreeMap<String, u64>) {
        let mut seen = self.seen_workflows.lock().unwrap_or_else(|p| p.into_inner());
        for gone in seen.iter().filter(|w| !by_workflow.contains_key(*w)) {
            self.dead_letters.with_label_values(&[gone.as_str()]).set(0);
        }
        for (w, n) in by_workflow {
            self.dead_letters.with_label_values(&[w.as_str()]).set(i64::try_from(*n).unwrap_or(i64::MAX));
            if !seen.contains(w) {
                seen.insert(w.clone());
            }
        }
    }
}

#[cfg(test)]
mod error_type_tests {
    use super::*;

    #[test]
    fn error_type_labels_are_cleaned_and_bounded() {
        let seen = Mutex::new(BTreeSet::new());
        assert_eq!(error_type_label(&seen, "ValueError"), "ValueError");
        assert_eq!(error_type_label(&seen, "bad type/with spaces"), "bad_type_with_spaces");
        assert_eq!(error_type_label(&seen, ""), "unknown");
        assert_eq!(error_type_label(&seen, &"x".repeat(100)).len(), 64);
        for i in 0..MAX_ERROR_TYPES {
            error_type_label(&seen, &format!("kind{i}"));
        }
        assert_eq!(error_type_label(&seen, "one-too-many"), "other");
        assert_eq!(error_type_label(&seen, "ValueError"), "ValueError", "known ones keep their label");
    }
}
