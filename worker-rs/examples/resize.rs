//! The README's worker example, compiled by `cargo clippy --all-targets` so it cannot rot.

use braid_worker::{TaskContext, TaskError, Worker};

#[derive(serde::Deserialize)]
struct Resize {
    url: String,
    width: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    Worker::builder()
        .endpoint("http://127.0.0.1:7400")
        .slots(8)
        .task("resize", |input: Resize, ctx: TaskContext| async move {
            let fetched: serde_json::Value = ctx.deps("fetch")?; // a dependency's output
            if ctx.is_cancelled() {
                return Err(TaskError::retryable("cancelled"));
            }
            Ok::<_, TaskError>(serde_json::json!({"url": input.url, "width": input.width, "from": fetched}))
        })
        .build()?
        .run() // until SIGTERM/SIGINT, then drains: finishes in-flight tasks, takes no new ones
        .await?;
    Ok(())
}
