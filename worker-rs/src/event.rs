//! `WorkerEvent`: what a worker reports to an `on_event` hook (connections, task starts and ends, acks).

use crate::TaskError;

/// One attempt of one task, as identified on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskRef {
    /// The task's id.
    pub task_id: String,
    /// The attempt number (1 for the first).
    pub attempt: u32,
    /// The lease (fencing token) of the attempt.
    pub lease_id: String,
    /// The task type.
    pub task_type: String,
}

/// How an attempt ended on this worker.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// The handler returned an output.
    Succeeded,
    /// The attempt failed with this error.
    Failed(TaskError),
}

/// Something that happened in a worker. Hooks run on the worker's tasks: keep them quick.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// A stream is established (`Welcome` received).
    Connected {
        /// The server's id for this stream.
        worker_id: String,
        /// The control plane's version.
        server_version: String,
    },
    /// The stream broke or the server closed it; the worker reconnects.
    Disconnected {
        /// What happened.
        error: String,
    },
    /// A handler started.
    TaskStarted {
        /// The attempt.
        task: TaskRef,
    },
    /// An attempt produced its result (the handler returned, or the task was cancelled before it
    /// started). `started` says whether a `TaskStarted` came before.
    TaskFinished {
        /// The attempt.
        task: TaskRef,
        /// How it ended.
        outcome: TaskOutcome,
        /// Whether its handler ran.
        started: bool,
    },
    /// The server answered a result.
    ResultAcked {
        /// The attempt.
        task: TaskRef,
        /// Whether the result was recorded as the attempt's outcome.
        accepted: bool,
        /// A `google.rpc.Code`: 0 accepted, 9 stale lease, 3 malformed result.
        code: i32,
        /// The server's explanation.
        reason: String,
    },
    /// The worker started draining.
    Draining {
        /// Why.
        reason: String,
    },
}
