//! `braid schedule …`: cron schedules through ScheduleService (create, get, list, update, pause, resume, delete, backfill).

use super::client::channel;
use super::{CliError, ClientArgs, Output};
use crate::api::{convert, flow};
use crate::domain::flow::{CatchupPolicy, OverlapPolicy, Priority};
use braid_proto::v1 as pb;
use braid_proto::v1::schedule_service_client::ScheduleServiceClient;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{Value, json};

/// Settings of a schedule; on update, only the flags given change.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScheduleFlags {
    /// 5 fields (minute hour day-of-month month day-of-week) or 6 (second first).
    #[arg(long)]
    pub cron: Option<String>,
    /// IANA timezone, e.g. America/New_York (default UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Run input as JSON text, or @FILE to read it from a file.
    #[arg(long)]
    pub input: Option<String>,
    /// skip, buffer_one, allow_all or cancel_other (default skip).
    #[arg(long)]
    pub overlap: Option<OverlapPolicy>,
    /// Missed ticks older than this are skipped (e.g. 10m, 1h; default 10m).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub catchup_window: Option<std::time::Duration>,
    /// all or latest: which missed ticks within the window fire (default all).
    #[arg(long)]
    pub catchup: Option<CatchupPolicy>,
    /// high, normal or low (default normal).
    #[arg(long)]
    pub priority: Option<Priority>,
    /// No tick before this instant (RFC 3339).
    #[arg(long)]
    pub start_at: Option<DateTime<Utc>>,
    /// No tick at or after this instant (RFC 3339).
    #[arg(long)]
    pub end_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule that triggers a workflow.
    Create {
        name: String,
        /// The workflow it triggers.
        #[arg(long)]
        workflow: String,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        flags: ScheduleFlags,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a schedule with its next fire times.
    Get {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List schedules by name.
    List {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        page_token: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a schedule: only the flags given change.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        workflow: Option<String>,
        #[command(flatten)]
        flags: ScheduleFlags,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop firing ticks (ticks while paused are not caught up).
    Pause {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fire ticks again, from now on.
    Resume {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a schedule (its runs stay).
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fire every tick in [START, END) of the past; ticks fired before keep their run.
    Backfill {
        id: String,
        #[arg(long)]
        start: DateTime<Utc>,
        #[arg(long)]
        end: DateTime<Utc>,
        /// Overlap policy for the backfilled ticks (default allow_all).
        #[arg(long)]
        overlap: Option<OverlapPolicy>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn read_input(input: &str) -> Result<String, CliError> {
    match input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| CliError::Input(format!("--input {path}: {e}"))),
        None => Ok(input.to_owned()),
    }
}

fn apply(s: &mut pb::Schedule, f: ScheduleFlags) -> Result<(), CliError> {
    if let Some(v) = f.cron {
        s.cron = v;
    }
    if let Some(v) = f.timezone {
        s.timezone = v;
    }
    if let Some(v) = f.input {
        s.input_json = read_input(&v)?;
    }
    if let Some(v) = f.overlap {
        s.overlap_policy = flow::overlap_policy(v).into();
    }
    if let Some(v) = f.catchup_window {
        s.catchup_window = Some(convert::duration(v));
    }
    if let Some(v) = f.catchup {
        s.catchup_policy = flow::catchup_policy(v).into();
    }
    if let Some(v) = f.priority {
        s.priority = flow::priority(v).into();
    }
    if let Some(v) = f.start_at {
        s.start_at = Some(convert::timestamp(v));
    }
    if let Some(v) = f.end_at {
        s.end_at = Some(convert::timestamp(v));
    }
    Ok(())
}

pub async fn schedule(cmd: ScheduleCommand) -> Result<(), CliError> {
    match cmd {
        ScheduleCommand::Create { name, workflow, paused, flags, client } => {
            if flags.cron.is_none() {
                return Err(CliError::Input("--cron is required".into()));
            }
            let mut s = pb::Schedule { name, workflow_name: workflow, paused, ..Default::default() };
            apply(&mut s, flags)?;
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let out = api.create_schedule(pb::CreateScheduleRequest { schedule: Some(s) }).await?.into_inner();
            print_schedule(&out.schedule.unwrap_or_default(), client.output);
        }
        ScheduleCommand::Get { id, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let out = api.get_schedule(pb::GetScheduleRequest { id }).await?.into_inner();
            print_schedule(&out.schedule.unwrap_or_default(), client.output);
        }
        ScheduleCommand::List { workflow, limit, page_token, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let req = pb::ListSchedulesRequest {
                workflow_name: workflow.unwrap_or_default(),
                page: Some(pb::PageRequest { page_size: limit, page_token: page_token.unwrap_or_default() }),
            };
            let out = api.list_schedules(req).await?.into_inner();
            print_schedules(&out.schedules, &out.next_page_token, client.output);
        }
        ScheduleCommand::Update { id, name, workflow, flags, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let mut s =
                api.get_schedule(pb::GetScheduleRequest { id }).await?.into_inner().schedule.unwrap_or_default();
            if let Some(v) = name {
                s.name = v;
            }
            if let Some(v) = workflow {
                s.workflow_name = v;
            }
            apply(&mut s, flags)?;
            let out = api.update_schedule(pb::UpdateScheduleRequest { schedule: Some(s) }).await?.into_inner();
            print_schedule(&out.schedule.unwrap_or_default(), client.output);
        }
        ScheduleCommand::Pause { id, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let out = api.pause_schedule(pb::PauseScheduleRequest { id }).await?.into_inner();
            print_schedule(&out.schedule.unwrap_or_default(), client.output);
        }
        ScheduleCommand::Resume { id, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let out = api.resume_schedule(pb::ResumeScheduleRequest { id }).await?.into_inner();
            print_schedule(&out.schedule.unwrap_or_default(), client.output);
        }
        ScheduleCommand::Delete { id, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            api.delete_schedule(pb::DeleteScheduleRequest { id: id.clone() }).await?;
            match client.output {
                Output::Json => outln!("{}", json!({"deleted": id})),
                Output::Text => outln!("schedule {id} deleted"),
            }
        }
        ScheduleCommand::Backfill { id, start, end, overlap, client } => {
            let mut api = ScheduleServiceClient::new(channel(&client).await?);
            let req = pb::BackfillScheduleRequest {
                id,
                start: Some(convert::timestamp(start)),
                end: Some(convert::timestamp(end)),
                overlap_policy: overlap.map_or(pb::OverlapPolicy::Unspecified, flow::overlap_policy).into(),
            };
            let out = api.backfill_schedule(req).await?.into_inner();
            match client.output {
                Output::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"ticks": out.ticks, "created": out.created, "run_ids": out.run_ids})
                    )
                    .unwrap_or_default()
                ),
                Output::Text => {
                    outln!("{} tick(s) in range, {} run(s) created", out.ticks, out.created);
                    for id in &out.run_ids {
                        outln!("  {id}");
                    }
                }
            }
        }
    }
    Ok(())
}

fn ts(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map_or(Value::Null, |d| Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

fn enum_name(v: &str) -> String {
    v.to_ascii_lowercase()
}

fn schedule_json(s: &pb::Schedule) -> Value {
    let overlap = pb::OverlapPolicy::try_from(s.overlap_policy).unwrap_or_default().as_str_name();
    let catchup = pb::CatchupPolicy::try_from(s.catchup_policy).unwrap_or_default().as_str_name();
    let priority = pb::Priority::try_from(s.priority).unwrap_or_default().as_str_name();
    json!({
        "id": s.id,
        "name": s.name,
        "workflow": s.workflow_name,
        "cron": s.cron,
        "timezone": if s.timezone.is_empty() { "UTC" } else { s.timezone.as_str() },
        "input": serde_json::from_str::<Value>(&s.input_json).unwrap_or(Value::String(s.input_json.clone())),
        "overlap": enum_name(overlap.trim_start_matches("OVERLAP_POLICY_")),
        "catchup": enum_name(catchup.trim_start_matches("CATCHUP_POLICY_")),
        "catchup_window_s": s.catchup_window.map(|d| d.seconds),
        "priority": enum_name(priority.trim_start_matches("PRIORITY_")),
        "paused": s.paused,
        "start_at": ts(s.start_at.as_ref()),
        "end_at": ts(s.end_at.as_ref()),
        "last_tick": ts(s.last_tick.as_ref()),
        "created_at": ts(s.created_at.as_ref()),
        "next_fire_times": s.next_fire_times.iter().map(|t| ts(Some(t))).collect::<Vec<_>>(),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn print_schedule(s: &pb::Schedule, out: Output) {
    let v = schedule_json(s);
    match out {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Output::Text => {
            for key in [
                "id",
                "name",
                "workflow",
                "cron",
                "timezone",
                "input",
                "overlap",
                "catchup",
                "catchup_window_s",
                "priority",
                "paused",
                "start_at",
                "end_at",
                "last_tick",
                "created_at",
            ] {
                outln!("{key:<17} {}", text(&v[key]));
            }
            outln!("next fire times");
            for t in s.next_fire_times.iter() {
                outln!("  {}", text(&ts(Some(t))));
            }
        }
    }
}

fn print_schedules(ss: &[pb::Schedule], next: &str, out: Output) {
    match out {
        Output::Json => {
            let v = json!({"schedules": ss.iter().map(schedule_json).collect::<Vec<_>>(), "next_page_token": next});
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Output::Text => {
            outln!("{:<38} {:<20} {:<16} {:<16} {:<8} NEXT", "ID", "NAME", "WORKFLOW", "CRON", "PAUSED");
            for s in ss {
                let v = schedule_json(s);
                let next_fire = v["next_fire_times"].get(0).map_or("-".to_owned(), text);
                outln!(
                    "{:<38} {:<20} {:<16} {:<16} {:<8} {next_fire}",
                    s.id,
                    s.name,
                    s.workflow_name,
                    s.cron,
                    s.paused
                );
            }
            if !next.is_empty() {
                outln!("more: --page-token {next}");
            }
        }
    }
}
