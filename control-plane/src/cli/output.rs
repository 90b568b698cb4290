//! How the operator verbs print: aligned text for people, JSON for scripts.

use super::Output;
use braid_proto::v1 as pb;
use serde_json::{Value, json};

fn ts(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map_or(Value::Null, |d| Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// A JSON payload field: parsed when it is JSON, kept as a string otherwise.
fn payload(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned())) }
}

fn run_state(v: i32) -> &'static str {
    match pb::RunState::try_from(v).unwrap_or_default() {
        pb::RunState::Unspecified => "unspecified",
        pb::RunState::Queued => "queued",
        pb::RunState::Running => "running",
        pb::RunState::Succeeded => "succeeded",
        pb::RunState::Failed => "failed",
        pb::RunState::Cancelled => "cancelled",
    }
}

fn task_state(v: i32) -> &'static str {
    match pb::TaskState::try_from(v).unwrap_or_default() {
        pb::TaskState::Unspecified => "unspecified",
        pb::TaskState::Pending => "pending",
        pb::TaskState::Ready => "ready",
        pb::TaskState::Leased => "leased",
        pb::TaskState::Succeeded => "succeeded",
        pb::TaskState::Failed => "failed",
        pb::TaskState::Cancelled => "cancelled",
        pb::TaskState::Skipped => "skipped",
    }
}

fn task_json(t: &pb::Task) -> Value {
    json!({
        "id": t.id, "name": t.name, "task_type": t.task_type, "state": task_state(t.state),
        "depends_on": t.depends_on, "attempt": t.attempt, "max_attempts": t.max_attempts,
        "output": payload(&t.output_json),
        "output_ref": t.output_ref.as_ref().map(stored_json),
        "last_error": t.last_error.as_ref().map(|e| json!({"message": e.message, "type": e.r#type, "retryable": e.retryable})),
        "available_at": ts(t.available_at.as_ref()), "finished_at": ts(t.finished_at.as_ref()),
    })
}

fn run_json(r: &pb::Run) -> Value {
    json!({
        "id": r.id, "workflow": r.workflow_name, "version": r.workflow_version, "state": run_state(r.state),
        "input": payload(&r.input_json), "output": payload(&r.output_json),
        "input_ref": r.input_ref.as_ref().map(stored_json), "output_ref": r.output_ref.as_ref().map(stored_json),
        "idempotency_key": (!r.idempotency_key.is_empty()).then_some(&r.idempotency_key),
        "created_at": ts(r.created_at.as_ref()), "started_at": ts(r.started_at.as_ref()),
        "finished_at": ts(r.finished_at.as_ref()),
        "reason": (!r.reason.is_empty()).then_some(&r.reason),
        "priority": priority(r.priority),
        "concurrency_key": (!r.concurrency_key.is_empty()).then_some(&r.concurrency_key),
        "schedule_id": (!r.schedule_id.is_empty()).then_some(&r.schedule_id),
        "scheduled_for": ts(r.scheduled_for.as_ref()),
        "tasks": r.tasks.iter().map(task_json).collect::<Vec<_>>(),
    })
}

fn stored_json(r: &pb::PayloadRef) -> Value {
    json!({"size": r.size, "sha256": (!r.sha256.is_empty()).then_some(&r.sha256)})
}

/// A payload kept in object storage, as one line: its size, checksum, and where to get it.
fn stored_line(r: &pb::PayloadRef, download: &str) -> String {
    let what = if r.sha256.is_empty() {
        format!("assembled from its tasks' outputs, {}", human_bytes(r.size))
    } else {
        format!("in object storage, {}, sha256 {}", human_bytes(r.size), r.sha256)
    };
    format!("({what}; download: GET {download} on the HTTP port)")
}

/// `5.0 MiB`, `312.5 KiB`, `17 B`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / f64::from(1 << 10)),
        n => format!("{n} B"),
    }
}

/// A run's priority by name (unspecified reads as normal).
fn priority(p: i32) -> &'static str {
    match pb::Priority::try_from(p) {
        Ok(pb::Priority::High) => "high",
        Ok(pb::Priority::Low) => "low",
        Ok(pb::Priority::Normal | pb::Priority::Unspecified) | Err(_) => "normal",
    }
}

fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints rows as left-aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

pub fn print_run(r: &pb::Run, created: Option<bool>, out: Output) {
    match out {
        Output::Json => {
            let mut v = run_json(r);
            if let Some(c) = created {
                v["created"] = Value::Bool(c);
            }
            print_json(&v);
        }
        Output::Text => {
            outln!("run       {}", r.id);
            outln!("workflow  {} v{}", r.workflow_name, r.workflow_version);
            outln!("state     {}", run_state(r.state));
            outln!("created   {}", text(&ts(r.created_at.as_ref())));
            if !r.idempotency_key.is_empty() {
                outln!("key       {}", r.idempotency_key);
            }
            if priority(r.priority) != "normal" {
                outln!("priority  {}", priority(r.priority));
            }
            if !r.concurrency_key.is_empty() {
                outln!("conc key  {}", r.concurrency_key);
            }
            if !r.schedule_id.is_empty() {
                outln!("schedule  {} tick {}", r.schedule_id, text(&ts(r.scheduled_for.as_ref())));
            }
            match &r.input_ref {
                Some(s) => outln!("input     {}", stored_line(s, &format!("/api/v1/runs/{}/input", r.id))),
                None => outln!("input     {}", r.input_json),
            }
            if let Some(s) = &r.output_ref {
                outln!("output    {}", stored_line(s, &format!("/api/v1/runs/{}/output", r.id)));
            } else if !r.output_json.is_empty() {
                outln!("output    {}", r.output_json);
            }
            for t in &r.tasks {
                if let Some(s) = &t.output_ref {
                    let at = format!("/api/v1/runs/{}/tasks/{}/output", r.id, t.name);
                    outln!("output of {}  {}", t.name, stored_line(s, &at));
                }
            }
            if !r.reason.is_empty() {
                outln!("reason    {}", r.reason);
            }
            outln!();
            let rows: Vec<Vec<String>> = r
                .tasks
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.task_type.clone(),
                        task_state(t.state).to_owned(),
                        format!("{}/{}", t.attempt, t.max_attempts),
                        if t.depends_on.is_empty() { "-".to_owned() } else { t.depends_on.join(",") },
                    ]
                })
                .collect();
            table(&["TASK", "TYPE", "STATE", "ATTEMPT", "DEPENDS ON"], &rows);
        }
    }
}

pub fn print_runs(runs: &[pb::Run], next: &str, out: Output) {
    match out {
        Output::Json => print_json(&json!({
            "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
            "next_page_token": (!next.is_empty()).then_some(next),
        })),
        Output::Text => {
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        format!("{} v{}", r.workflow_name, r.workflow_version),
                        run_state(r.state).to_owned(),
                        text(&ts(r.created_at.as_ref())),
                    ]
                })
                .collect();
            table(&["RUN", "WORKFLOW", "STATE", "CREATED"], &rows);
            if !next.is_empty() {
                outln!("\nmore: --page-token {next}");
            }
        }
    }
}

pub fn print_workflow(w: &pb::Workflow, created: Option<bool>, out: Output) {
    let d = w.definition.clone().unwrap_or_default();
    match out {
        Output::Json => {
            let tasks: Vec<Value> = d
                .tasks
                .iter()
                .map(|t| json!({"name": t.name, "task_type": t.task_type, "depends_on": t.depends_on}))
                .collect();
            let mut v = json!({
                "name": w.name, "version": w.version, "content_hash": w.content_hash,
                "created_at": ts(w.created_at.as_ref()), "description": d.description, "tasks": tasks,
            });
            if let Some(c) = created {
                v["created"] = Value::Bool(c);
            }
            print_json(&v);
        }
        Output::Text => {
            outln!("workflow  {} v{}", w.name, w.version);
            outln!("created   {}", text(&ts(w.created_at.as_ref())));
            outln!("hash      {}", w.content_hash);
            if !d.description.is_empty() {
                outln!("about     {}", d.description);
            }
            outln!();
            let rows: Vec<Vec<String>> = d
                .tasks
                .iter()
                .map(|t| {
                    let attempts = t.retry.as_ref().and_then(|r| r.max_attempts).unwrap_or(0);
                    vec![
                        t.name.clone(),
                        t.task_type.clone(),
                        attempts.to_string(),
                        if t.depends_on.is_empty() { "-".to_owned() } else { t.depends_on.join(",") },
                    ]
                })
                .collect();
            table(&["TASK", "TYPE", "ATTEMPTS", "DEPENDS ON"], &rows);
        }
    }
}

pub fn print_workflows(ws: &[pb::WorkflowSummary], out: Output) {
    match out {
        Output::Json => print_json(&json!(
            ws.iter()
                .map(|w| json!({"name": w.name, "latest_version": w.latest_version, "tasks": w.task_count,
                             "description": w.description, "updated_at": ts(w.updated_at.as_ref())}))
                .collect::<Vec<_>>()
        )),
        Output::Text => {
            let rows: Vec<Vec<String>> = ws
                .iter()
                .map(|w| {
                    vec![
                        w.name.clone(),
                        w.latest_version.to_string(),
                        w.task_count.to_string(),
                        text(&ts(w.updated_at.as_ref())),
                    ]
                })
                .collect();
            table(&["WORKFLOW", "VERSION", "TASKS", "UPDATED"], &rows);
        }
    }
}

pub fn print_dead_letters(dls: &[pb::DeadLetter], out: Output) {
    let rows: Vec<Value> = dls
        .iter()
        .map(|d| {
            let e = d.last_error.clone().unwrap_or_default();
            json!({
                "id": d.id, "run_id": d.run_id, "workflow": d.workflow_name, "version": d.workflow_version,
                "task": d.task_name, "task_type": d.task_type, "attempts": d.attempts,
                "error": {"type": e.r#type, "message": e.message, "retryable": e.retryable},
                "created_at": ts(d.created_at.as_ref()),
            })
        })
        .collect();
    match out {
        Output::Json => print_json(&Value::Array(rows)),
        Output::Text => {
            let table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        text(&r["id"]),
                        format!("{}/{}", text(&r["workflow"]), text(&r["task"])),
                        text(&r["attempts"]),
                        text(&r["error"]["type"]),
                        text(&r["error"]["message"]).chars().take(60).collect(),
                    ]
                })
                .collect();
            table(&["DEAD LETTER", "WORKFLOW/TASK", "ATTEMPTS", "ERROR", "MESSAGE"], &table_rows);
        }
    }
}

pub fn print_workers(ws: &[pb::WorkerInfo], out: Output) {
    let rows: Vec<Value> = ws
        .iter()
        .map(|w| {
            json!({
                "id": w.id, "name": w.name, "task_types": w.task_types, "slots": w.slots,
                "sdk": format!("{} {}", w.sdk_language, w.sdk_version), "draining": w.draining,
                "last_heartbeat_at": ts(w.last_heartbeat_at.as_ref()),
            })
        })
        .collect();
    match out {
        Output::Json => print_json(&Value::Array(rows)),
        Output::Text => {
            let table_rows: Vec<Vec<String>> = ws
                .iter()
                .map(|w| {
                    vec![
                        w.name.clone(),
                        w.task_types.join(","),
                        w.slots.to_string(),
                        format!("{} {}", w.sdk_language, w.sdk_version),
                        if w.draining { "draining".into() } else { "serving".into() },
                    ]
                })
                .collect();
            table(&["WORKER", "TASK TYPES", "SLOTS", "SDK", "STATE"], &table_rows);
        }
    }
}

fn event_json(e: &pb::RunEvent) -> Value {
    json!({
        "run_id": e.run_id, "sequence": e.sequence, "kind": e.kind,
        "task_name": (!e.task_name.is_empty()).then_some(&e.task_name),
        "attempt": (e.attempt != 0).then_some(e.attempt),
        "at": ts(e.at.as_ref()), "detail": payload(&e.detail_json),
    })
}

/// One line per event of `braid run watch`: time, kind, task, attempt, short detail; or one
/// JSON object per line.
pub fn print_event(e: &pb::RunEvent, out: Output) {
    match out {
        Output::Json => outln!("{}", event_json(e)),
        Output::Text => {
            let at =
                e.at.as_ref()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
                    .map_or_else(|| "-".to_owned(), |d| d.format("%H:%M:%S%.3f").to_string());
            let task = if e.task_name.is_empty() { "-" } else { &e.task_name };
            let attempt = if e.attempt == 0 { "-".to_owned() } else { format!("#{}", e.attempt) };
            let detail = match payload(&e.detail_json) {
                Value::Null => String::new(),
                Value::Object(m) if m.is_empty() => String::new(),
                v => short(&v.to_string(), 100),
            };
            let line = format!("{at}  {:<22}  {task:<16}  {attempt:<4}  {detail}", e.kind);
            outln!("{}", line.trim_end());
        }
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// The run at the end of `braid run watch`: its summary and tasks, or one JSON line `{"run": …}`.
pub fn print_final_run(r: &pb::Run, out: Output) {
    match out {
        Output::Json => outln!("{}", json!({ "run": run_json(r) })),
        Output::Text => {
            outln!();
            print_run(r, None, out);
        }
    }
}
