//! Named background tasks: spawned under a name, awaited in order at shutdown with a deadline.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Background tasks of one process, each with a name for logs.
#[derive(Debug, Default)]
pub struct Tasks {
    running: Vec<(&'static str, JoinHandle<Result<(), String>>)>,
}

impl Tasks {
    /// Starts `fut` as the task `name`.
    pub fn spawn<F>(&mut self, name: &'static str, fut: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        tracing::debug!(task = name, "starting");
        self.running.push((name, tokio::spawn(fut)));
    }

    /// Waits for every task, in the order they were started, each within `deadline`;
    /// a task that overstays is aborted. Returns the first failure.
    pub async fn join(self, deadline: Duration) -> Result<(), String> {
        let mut first_error = None;
        for (name, mut handle) in self.running {
            let outcome = match tokio::time::timeout(deadline, &mut handle).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(format!("{name}: {e}")),
                Ok(Err(join)) => Err(format!("{name}: {join}")),
                Err(_) => {
                    handle.abort();
                    Err(format!("{name}: did not stop within {deadline:?}; aborted"))
                }
            };
            match outcome {
                Ok(()) => tracing::debug!(task = name, "stopped"),
                Err(e) => {
                    tracing::error!(task = name, error = %e, "task failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
