//! Why a task is not running: the one reason each waiting task of a run waits, from the run, its tasks and the workers serving each task type.

use crate::domain::records::{Run, Task};
use crate::domain::state::{RunState, TaskState};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Connected workers serving one task type, and their free slots (cluster-wide).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    pub workers: u32,
    pub free_slots: u32,
}

/// Why a task that has not finished is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Dependencies that have not succeeded yet, with their states.
    Dependencies(Vec<(String, TaskState)>),
    /// The run waits for a concurrency slot (the run's reason says which limit).
    RunQueued(String),
    /// A failed attempt's backoff: ready again at this instant.
    Backoff(DateTime<Utc>),
    /// No connected worker serves the task type.
    NoWorker(String),
    /// Workers serve the task type, but every slot is taken.
    WorkersBusy { task_type: String, workers: u32 },
    /// Due and served with free slots: it is being handed to a worker.
    Dispatching(String),
    /// The run has finished; this task will not run (unless a redrive resumes the run).
    RunFinished(RunState),
}

impl Blocker {
    /// The machine-readable kind, as the dashboard API names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Blocker::Dependencies(_) => "dependencies",
            Blocker::RunQueued(_) => "run_queued",
            Blocker::Backoff(_) => "backoff",
            Blocker::NoWorker(_) => "no_worker",
            Blocker::WorkersBusy { .. } => "workers_busy",
            Blocker::Dispatching(_) => "dispatching",
            Blocker::RunFinished(_) => "run_finished",
        }
    }

    /// One sentence for a person.
    pub fn message(&self) -> String {
        match self {
            Blocker::Dependencies(deps) => {
                let list: Vec<String> = deps.iter().map(|(name, state)| format!("{name} ({state})")).collect();
                format!("waiting on {}", list.join(", "))
            }
            Blocker::RunQueued(reason) => format!("the run is queued: {reason}"),
            Blocker::Backoff(until) => {
                format!("retrying after backoff at {}", until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }
            Blocker::NoWorker(t) => format!("no connected worker serves task type {t:?}"),
            Blocker::WorkersBusy { task_type, workers } => {
                let s = if *workers == 1 { "" } else { "s" };
                format!("all slots of the {workers} worker{s} serving {task_type:?} are busy")
            }
            Blocker::Dispatching(t) => format!("due; being handed to a worker serving {t:?}"),
            Blocker::RunFinished(state) => format!("the run is {state}; this task will not run"),
        }
    }
}

/// The blocker of every task of `run` (same order as `tasks`), None for tasks that are running
/// or finished. `capacity` holds the connected workers per task type; `now` is the database's clock.
pub fn blockers(
    run: &Run,
    tasks: &[Task],
    capacity: &HashMap<String, Capacity>,
    now: DateTime<Utc>,
) -> Vec<Option<Blocker>> {
    let state_of: HashMap<&str, TaskState> = tasks.iter().map(|t| (t.name.as_str(), t.state)).collect();
    tasks.iter().map(|t| blocker(run, t, &state_of, capacity, now)).collect()
}

fn blocker(
    run: &Run,
    t: &Task,
    state_of: &HashMap<&str, TaskState>,
    capacity: &HashMap<String, Capacity>,
    now: DateTime<Utc>,
) -> Option<Blocker> {
    let waiting = match t.state {
        TaskState::Pending | TaskState::Ready => true,
        TaskState::Leased | TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled | TaskState::Skipped => {
            false
        }
    };
    if !waiting {
        return None;
    }
    match run.state {
        RunState::Queued => {
            return Some(Blocker::RunQueued(run.reason.clone().unwrap_or_else(|| "no reason recorded".into())));
        }
        RunState::Succeeded | RunState::Failed | RunState::Cancelled => return Some(Blocker::RunFinished(run.state)),
        RunState::Running => {}
    }
    if t.state == TaskState::Pending {
        let deps: Vec<(String, TaskState)> = t
            .depends_on
            .iter()
            .filter_map(|d| {
                let s = state_of.get(d.as_str()).copied().unwrap_or(TaskState::Pending);
                (s != TaskState::Succeeded).then(|| (d.clone(), s))
            })
            .collect();
        return Some(Blocker::Dependencies(deps));
    }
    if t.available_at > now {
        return Some(Blocker::Backoff(t.available_at));
    }
    let cap = capacity.get(&t.task_type).copied().unwrap_or_default();
    Some(if cap.workers == 0 {
        Blocker::NoWorker(t.task_type.clone())
    } else if cap.free_slots == 0 {
        Blocker::WorkersBusy { task_type: t.task_type.clone(), workers: cap.workers }
    } else {
        Blocker::Dispatching(t.task_type.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flow::Priority;
    use crate::domain::state::TriggerSource;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
    }

    fn run(state: RunState) -> Run {
        Run {
            id: Uuid::nil(),
            workflow_name: "w".into(),
            workflow_version: 1,
            state,
            input: "{}".into(),
            input_ref: None,
            output: None,
            output_ref: None,
            idempotency_key: None,
            trigger_source: TriggerSource::Api,
            reason: None,
            created_at: at(0),
            started_at: None,
            finished_at: None,
            priority: Priority::Normal,
            concurrency_key: None,
            schedule: None,
        }
    }

    fn task(name: &str, task_type: &str, state: TaskState, deps: &[&str], available: i64) -> Task {
        Task {
            id: Uuid::nil(),
            run_id: Uuid::nil(),
            name: name.into(),
            task_type: task_type.into(),
            state,
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            attempt: 0,
            max_attempts: 3,
            output: None,
            output_ref: None,
            last_error: None,
            available_at: at(available),
            created_at: at(0),
            finished_at: None,
            attempts: Vec::new(),
        }
    }

    fn caps(entries: &[(&str, u32, u32)]) -> HashMap<String, Capacity> {
        entries.iter().map(|(t, w, f)| ((*t).to_owned(), Capacity { workers: *w, free_slots: *f })).collect()
    }

    #[test]
    fn each_waiting_task_gets_its_reason() {
        let tasks = vec![
            task("a", "fast", TaskState::Succeeded, &[], 0),
            task("b", "slow", TaskState::Leased, &["a"], 0),
            task("c", "fast", TaskState::Pending, &["a", "b"], 0),
            task("d", "fast", TaskState::Ready, &[], 30),
            task("e", "gpu", TaskState::Ready, &[], 0),
            task("f", "slow", TaskState::Ready, &[], 0),
            task("g", "fast", TaskState::Ready, &[], 0),
        ];
        let got = blockers(&run(RunState::Running), &tasks, &caps(&[("fast", 2, 3), ("slow", 1, 0)]), at(10));
        assert_eq!(got[0], None);
        assert_eq!(got[1], None);
        assert_eq!(got[2], Some(Blocker::Dependencies(vec![("b".into(), TaskState::Leased)])));
        assert_eq!(got[3], Some(Blocker::Backoff(at(30))));
        assert_eq!(got[4], Some(Blocker::NoWorker("gpu".into())));
        assert_eq!(got[5], Some(Blocker::WorkersBusy { task_type: "slow".into(), workers: 1 }));
        assert_eq!(got[6], Some(Blocker::Dispatching("fast".into())));
        assert_eq!(got[2].as_ref().unwrap().message(), "waiting on b (leased)");
        assert_eq!(got[4].as_ref().unwrap().message(), "no connected worker serves task type \"gpu\"");
    }

    #[test]
    fn a_queued_run_names_its_limit_and_a_finished_run_ends_waiting() {
        let mut r = run(RunState::Queued);
        r.reason = Some("waiting for a slot: max_concurrent_runs 1 of workflow \"w\"".into());
        let tasks = vec![task("a", "fast", TaskState::Ready, &[], 0), task("b", "fast", TaskState::Pending, &["a"], 0)];
        let got = blockers(&r, &tasks, &caps(&[("fast", 1, 1)]), at(0));
        assert!(got.iter().all(|b| matches!(b, Some(Blocker::RunQueued(m)) if m.contains("max_concurrent_runs 1"))));
        let got = blockers(&run(RunState::Cancelled), &tasks, &HashMap::new(), at(0));
        assert_eq!(got[0], Some(Blocker::RunFinished(RunState::Cancelled)));
    }
}
