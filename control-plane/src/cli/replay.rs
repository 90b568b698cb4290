//! `braid replay RUN_ID [--against-version N]`: fetch a recorded run over the API, replay it on a local engine, print the trace and differences.

use super::client::channel;
use super::{CliError, ClientArgs};
use crate::api::convert;
use crate::domain::flow::Priority;
use crate::domain::records::TaskError;
use crate::domain::state::{RunState, TaskState};
use crate::sim::replay::{self, RecordedAttempt, RecordedEvent, RecordedTask, Recording, Replay};
use braid_proto::v1 as pb;
use braid_proto::v1::run_service_client::RunServiceClient;
use braid_proto::v1::workflow_service_client::WorkflowServiceClient;
use std::time::Duration;

/// Replay a recorded run's decisions on a local engine with its recorded outcomes (no workers).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Reads the run, its events and its workflow version(s) through the API (--endpoint, \
--token), then runs the engine in this process on an in-memory database and virtual time.\nWithout \
--against-version: the recorded inputs (leases, results, expiries, cancellation, redrives) are fed in their \
recorded order and the engine's events must equal the recorded ones (exit 1 where they part).\nWith \
--against-version N: the run is played on the recorded version and on version N, every attempt ending as \
recorded, and the differences are printed (tasks added or removed, scheduled differently, ending differently).")]
pub struct ReplayArgs {
    /// The run to replay.
    pub run_id: String,
    /// Replay the run against this version of its workflow as well, and print the differences.
    #[arg(long, value_name = "N")]
    pub against_version: Option<u32>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// How long the event stream of a run still in progress may stay silent before the replay
/// takes what it has (a finished run's stream ends on its own).
const IDLE: Duration = Duration::from_secs(1);

pub async fn run(args: ReplayArgs) -> Result<(), CliError> {
    let (rec, name) = fetch(&args).await?;
    let exact = replay::replay_exact(&rec).await.map_err(|e| CliError::Input(e.to_string()))?;
    outln!(
        "replay of run {} ({name} v{}, {}): {} recorded events",
        rec.run_id,
        rec.version,
        rec.state,
        rec.events.len()
    );
    print_trace(&exact.replay);
    for note in &exact.replay.notes {
        outln!("  note: {note}");
    }
    if let Some(d) = &exact.divergence {
        let show = |e: &Option<RecordedEvent>| e.as_ref().map_or_else(|| "(nothing)".to_owned(), RecordedEvent::label);
        return Err(CliError::Input(format!(
            "the replay departs from the recording at compared event {}: recorded {}, replayed {}",
            d.index + 1,
            show(&d.recorded),
            show(&d.replayed)
        )));
    }
    outln!(
        "the replay reproduces the recorded run: {} of {} compared events identical (kind, task, attempt, order); run {}",
        exact.compared,
        exact.compared,
        exact.replay.run_state
    );
    let Some(version) = args.against_version else { return Ok(()) };
    let other = definition(&args, &name, version).await?;
    let fail = |e: crate::sim::SimError| CliError::Input(e.to_string());
    let base = replay::replay_waves(&rec.definition, &rec).await.map_err(fail)?;
    let against = replay::replay_waves(&other, &rec).await.map_err(fail)?;
    outln!("");
    outln!("v{} against v{version}, every ready task leased at once, each attempt ending as recorded:", rec.version);
    for note in against.notes.iter().filter(|n| !base.notes.contains(n)) {
        outln!("  note (v{version}): {note}");
    }
    let differences = replay::diff(&base, &against);
    if differences.is_empty() {
        outln!("no differences: v{version} schedules and ends every task as v{} does", rec.version);
    } else {
        outln!("{} difference(s):", differences.len());
        for d in &differences {
            outln!("  {d}");
        }
    }
    Ok(())
}

/// The replayed events, numbered, with a mark where an event is not compared.
fn print_trace(replay: &Replay) {
    for e in &replay.trace {
        let mark = if e.compared() { ' ' } else { '.' };
        outln!("  {:>4}{mark} {}", e.sequence, e.label());
    }
}

/// The recording of `args.run_id`: the run, its tasks and attempts, its events and its definition.
async fn fetch(args: &ReplayArgs) -> Result<(Recording, String), CliError> {
    let mut runs = RunServiceClient::new(channel(&args.client).await?);
    let run =
        runs.get_run(pb::GetRunRequest { run_id: args.run_id.clone() }).await?.into_inner().run.unwrap_or_default();
    let def = definition(args, &run.workflow_name, run.workflow_version).await?;
    let events = events(&mut runs, &args.run_id).await?;
    let state =
        proto_name(pb::RunState::try_from(run.state).map(|s| s.as_str_name()).unwrap_or_default(), "RUN_STATE_")
            .parse::<RunState>()
            .map_err(|_| CliError::Input(format!("run {} has an unknown state", run.id)))?;
    let priority =
        proto_name(pb::Priority::try_from(run.priority).map(|p| p.as_str_name()).unwrap_or_default(), "PRIORITY_")
            .parse::<Priority>()
            .unwrap_or(Priority::Normal);
    let tasks = run
        .tasks
        .iter()
        .map(|t| {
            let state = proto_name(
                pb::TaskState::try_from(t.state).map(|s| s.as_str_name()).unwrap_or_default(),
                "TASK_STATE_",
            )
            .parse::<TaskState>()
            .ok();
            let attempts = t
                .attempts
                .iter()
                .map(|a| RecordedAttempt {
                    attempt: a.attempt,
                    outcome: (!a.outcome.is_empty()).then(|| a.outcome.clone()),
                    error: a.error.as_ref().map(task_error),
                })
                .collect();
            let output_json = (!t.output_json.is_empty()).then(|| t.output_json.clone());
            (t.name.clone(), RecordedTask { state, output_json, attempts })
        })
        .collect();
    let rec = Recording {
        run_id: run.id.clone(),
        version: run.workflow_version,
        definition: def,
        input_json: run.input_json.clone(),
        priority,
        state,
        tasks,
        events,
    };
    Ok((rec, run.workflow_name))
}

/// `PREFIX_SOME_NAME` → `some_name`.
fn proto_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase()
}

fn task_error(e: &pb::TaskError) -> TaskError {
    TaskError {
        message: e.message.clone(),
        kind: e.r#type.clone(),
        retryable: e.retryable,
        details: (!e.details_json.is_empty()).then(|| e.details_json.clone()),
    }
}

/// Version `version` of workflow `name`, as a definition.
async fn definition(
    args: &ReplayArgs,
    name: &str,
    version: u32,
) -> Result<crate::domain::definition::WorkflowDefinition, CliError> {
    if version == 0 {
        return Err(CliError::Input("--against-version: versions start at 1".into()));
    }
    let mut api = WorkflowServiceClient::new(channel(&args.client).await?);
    let w = api
        .get_workflow(pb::GetWorkflowRequest { name: name.to_owned(), version })
        .await?
        .into_inner()
        .workflow
        .and_then(|w| w.definition)
        .ok_or_else(|| CliError::Input(format!("workflow {name} v{version} has no definition")))?;
    convert::definition(w).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.path, e.reason)).collect();
        CliError::Input(format!("workflow {name} v{version} cannot be read back: {}", list.join("; ")))
    })
}

/// The run's event log, oldest first: the whole of it for a finished run, what there is so far
/// for one in progress.
async fn events(
    api: &mut RunServiceClient<super::client::Authed>,
    run_id: &str,
) -> Result<Vec<RecordedEvent>, CliError> {
    let mut stream =
        api.watch_run(pb::WatchRunRequest { run_id: run_id.to_owned(), after_sequence: 0 }).await?.into_inner();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(IDLE, stream.message()).await {
            Ok(Ok(Some(pb::WatchRunResponse { event: Some(e) }))) => out.push(RecordedEvent {
                sequence: e.sequence,
                kind: e.kind,
                task: (!e.task_name.is_empty()).then_some(e.task_name),
                attempt: (e.attempt > 0).then_some(e.attempt),
            }),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Err(_) => break,
            Ok(Err(status)) => return Err(status.into()),
        }
    }
    Ok(out)
}
