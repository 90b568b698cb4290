//! The demo task types: noop, echo, sleep, fail, rs-d, blob and digest (large payloads), and crash (for drills).

use braid_worker::{TaskContext, TaskError, WorkerBuilder};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use std::time::Duration;

/// A task type the example serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Kind {
    /// Returns `{}`, whatever the input.
    Noop,
    /// Returns `{"input": <input>, "deps": <dependency outputs>}`.
    Echo,
    /// `{"ms": N}`: sleeps N ms unless cancelled, returns `{"slept_ms": N}`.
    Sleep,
    /// `{"times": N, "fatal": bool}` or `{"always": true}`: fails on purpose.
    Fail,
    /// The polyglot chain's last step: `{"value": b.value + c.value, "paths": [b.path, c.path]}`.
    #[value(name = "rs-d")]
    RsD,
    /// Aborts the worker process (a poison task, for `braid drill poison-task`). Never served by default.
    Crash,
    /// `{"bytes": N, "seed": S}`: returns `{"blob": <N letters from seed S>, "sha256": <hex of them>}`
    /// (see [`blob_text`]). Never served by default.
    Blob,
    /// Returns the size and SHA-256 of what it received: `{"input": D, "deps": {"name": D, …}}`, where
    /// D is `{"bytes", "sha256"}` of a value's `blob` string if it has one, else of its compact JSON.
    /// Never served by default.
    Digest,
}

/// `bytes` lowercase letters made from `seed`, the same in every example worker (Python's too).
pub(crate) fn blob_text(bytes: usize, seed: u64) -> String {
    (0..bytes as u64).map(|i| char::from(b'a' + ((i * 31 + seed * 17 + i / 97) % 26) as u8)).collect()
}

/// Registers `kind`; with `heal`, `fail` succeeds on every attempt (the handler "fixed").
pub(crate) fn register(builder: WorkerBuilder, kind: Kind, heal: bool) -> WorkerBuilder {
    match kind {
        Kind::Noop => builder.task("noop", |_: IgnoredAny, _: TaskContext| async { Ok::<_, TaskError>(json!({})) }),
        Kind::Echo => builder.task("echo", |input: Value, ctx: TaskContext| async move {
            Ok::<_, TaskError>(json!({"input": input, "deps": ctx.deps_raw()}))
        }),
        Kind::Sleep => builder.task("sleep", sleep),
        Kind::Fail if heal => builder.task("fail", |_: IgnoredAny, ctx: TaskContext| async move {
            Ok::<_, TaskError>(json!({"attempt": ctx.attempt(), "healed": true}))
        }),
        Kind::Fail => builder.task("fail", fail),
        Kind::RsD => builder.task("rs-d", chain_last),
        Kind::Crash => builder.task("crash", crash),
        Kind::Blob => builder.task("blob", blob),
        Kind::Digest => builder.task("digest", |input: Value, ctx: TaskContext| async move {
            let deps: serde_json::Map<String, Value> =
                ctx.deps_raw().iter().map(|(k, v)| (k.clone(), digest(v))).collect();
            Ok::<_, TaskError>(json!({"input": digest(&input), "deps": deps}))
        }),
    }
}

#[derive(Debug, Deserialize)]
struct BlobInput {
    bytes: usize,
    #[serde(default)]
    seed: u64,
}

async fn blob(input: BlobInput, _: TaskContext) -> Result<Value, TaskError> {
    let text = blob_text(input.bytes, input.seed);
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    Ok(json!({"blob": text, "sha256": sha256}))
}

/// `{"bytes", "sha256"}` of `v`'s `blob` string, or of its compact JSON.
fn digest(v: &Value) -> Value {
    let text = match v.get("blob").and_then(Value::as_str) {
        Some(blob) => blob.to_owned(),
        None => v.to_string(),
    };
    json!({"bytes": text.len(), "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()))})
}

#[derive(Debug, Deserialize)]
struct SleepInput {
    ms: u64,
}

async fn sleep(input: SleepInput, ctx: TaskContext) -> Result<Value, TaskError> {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(input.ms)) => Ok(json!({"slept_ms": input.ms})),
        () = ctx.cancelled() => {
            let why = ctx.cancel_reason().map(|r| r.to_string()).unwrap_or_default();
            Err(TaskError::retryable("cancelled").with_type("cancelled").with_details(json!({"why": why})))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FailInput {
    times: u32,
    fatal: bool,
    always: bool,
}

async fn fail(input: Option<FailInput>, ctx: TaskContext) -> Result<Value, TaskError> {
    let input = input.unwrap_or_default();
    let attempt = ctx.attempt();
    if input.always {
        return Err(TaskError::retryable(format!("injected failure (always), attempt {attempt}")).with_type("injected"));
    }
    if attempt <= input.times {
        let message = format!("injected failure {attempt} of {}", input.times);
        let error = if input.fatal { TaskError::fatal(message) } else { TaskError::retryable(message) };
        return Err(error.with_type("injected"));
    }
    Ok(json!({"attempt": attempt}))
}

/// The last step of the polyglot chain `a (Python) -> b (TypeScript), c (Go) -> d (Rust)`.
async fn chain_last(_: IgnoredAny, ctx: TaskContext) -> Result<Value, TaskError> {
    let b: Value = ctx.deps("b")?;
    let c: Value = ctx.deps("c")?;
    let value = |v: &Value| v["value"].as_i64().ok_or_else(|| TaskError::fatal("a dependency has no integer value"));
    Ok(json!({"value": value(&b)? + value(&c)?, "paths": [b["path"], c["path"]]}))
}

/// A poison task: aborts the whole worker process every time it runs (`braid drill poison-task`).
async fn crash(_: IgnoredAny, _: TaskContext) -> Result<Value, TaskError> {
    eprintln!("task type crash: aborting the worker process on purpose");
    std::process::abort()
}
