//! The bench's Rust workers: braid-worker SDK workers in this process, over real gRPC, reporting to the recorder.

use super::BenchError;
use super::recorder::Recorder;
use braid_worker::{TaskContext, TaskError, Worker, WorkerError, WorkerHandle};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long workers may take to connect.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// How long a stop may take before the workers are aborted.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The output of every bench task.
#[derive(Debug, serde::Serialize)]
struct Empty {}

/// Running workers, one stream each.
#[derive(Debug)]
pub struct Pool {
    running: Vec<(WorkerHandle, JoinHandle<Result<(), WorkerError>>)>,
}

impl Pool {
    /// Starts `streams` workers of `slots` slots serving `task_type`, and waits until each has connected.
    pub async fn start(
        endpoint: &str,
        streams: u32,
        slots: u32,
        task_type: &str,
        rec: &Arc<Recorder>,
    ) -> Result<Self, BenchError> {
        let mut connections = rec.connections();
        let before = *connections.borrow_and_update();
        let mut running = Vec::new();
        for i in 0..streams {
            let (on_start, on_event) = (rec.clone(), rec.clone());
            let worker = Worker::builder()
                .endpoint(endpoint)
                .name(format!("bench-{}-{i}", std::process::id()))
                .slots(slots)
                .task(task_type, move |input: Value, ctx: TaskContext| {
                    on_start.started(&input, &ctx);
                    std::future::ready(Ok::<_, TaskError>(Empty {}))
                })
                .on_event(move |e| on_event.event(e))
                .build()?;
            let handle = worker.handle();
            running.push((handle, tokio::spawn(worker.run_until(std::future::pending()))));
        }
        let pool = Self { running };
        let want = before + u64::from(streams);
        match tokio::time::timeout(CONNECT_DEADLINE, connections.wait_for(|n| *n >= want)).await {
            Ok(Ok(_)) => Ok(pool),
            Ok(Err(_)) | Err(_) => {
                pool.stop().await;
                Err(BenchError::WorkersNotConnected(CONNECT_DEADLINE))
            }
        }
    }

    /// Drains the workers (they have nothing in flight between phases) and waits for them to end.
    pub async fn stop(self) {
        for (h, _) in &self.running {
            h.shutdown();
        }
        for (h, join) in self.running {
            if tokio::time::timeout(STOP_DEADLINE, join).await.is_err() {
                h.abort();
            }
        }
    }
}
