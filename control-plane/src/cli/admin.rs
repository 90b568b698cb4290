//! The operator verbs on dead letters and workers: `braid dlq …`, `braid worker list`.

use super::client::channel;
use super::output::{print_dead_letters, print_workers};
use super::{CliError, DlqCommand, DlqFilter, Output, WorkerCommand};
use braid_proto::v1 as pb;
use braid_proto::v1::admin_service_client::AdminServiceClient;

fn filter(f: DlqFilter) -> pb::DeadLetterFilter {
    pb::DeadLetterFilter {
        workflow_name: f.workflow.unwrap_or_default(),
        task_name: f.task.unwrap_or_default(),
        error_type: f.error_type.unwrap_or_default(),
        created_after: None,
        created_before: None,
    }
}

pub async fn dlq(cmd: DlqCommand) -> Result<(), CliError> {
    match cmd {
        DlqCommand::List { filter: f, client } => {
            let mut api = AdminServiceClient::new(channel(&client).await?);
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let req = pb::ListDeadLettersRequest {
                    filter: Some(filter(f.clone())),
                    page: Some(pb::PageRequest { page_size: 500, page_token: token }),
                };
                let out = api.list_dead_letters(req).await?.into_inner();
                all.extend(out.dead_letters);
                if out.next_page_token.is_empty() {
                    break;
                }
                token = out.next_page_token;
            }
            print_dead_letters(&all, client.output);
        }
        DlqCommand::Redrive { ids, all, filter: f, client } => {
            if ids.is_empty() && !all {
                return Err(CliError::Input(
                    "name dead-letter ids, or pass --all (with filter flags to narrow it)".into(),
                ));
            }
            let req = if all {
                pb::RedriveDeadLettersRequest { ids: Vec::new(), filter: Some(filter(f)) }
            } else {
                pb::RedriveDeadLettersRequest { ids, filter: None }
            };
            let mut api = AdminServiceClient::new(channel(&client).await?);
            let out = api.redrive_dead_letters(req).await?.into_inner();
            match client.output {
                Output::Json => outln!("{}", serde_json::json!({"redriven": out.redriven, "task_ids": out.task_ids})),
                Output::Text => outln!("redrove {} task(s)", out.redriven),
            }
        }
        DlqCommand::Purge { ids, all, filter: f, client } => {
            let narrowed = f.workflow.is_some() || f.task.is_some() || f.error_type.is_some();
            let req = if !ids.is_empty() {
                pb::PurgeDeadLettersRequest { ids, filter: None }
            } else if all || narrowed {
                pb::PurgeDeadLettersRequest { ids: Vec::new(), filter: Some(filter(f)) }
            } else {
                return Err(CliError::Input(
                    "name dead letters with --id, narrow with --workflow/--task/--error-type, or pass --all".into(),
                ));
            };
            let mut api = AdminServiceClient::new(channel(&client).await?);
            let out = api.purge_dead_letters(req).await?.into_inner();
            match client.output {
                Output::Json => outln!("{}", serde_json::json!({"purged": out.purged})),
                Output::Text => outln!("purged {} dead letter(s)", out.purged),
            }
        }
    }
    Ok(())
}

pub async fn workers(cmd: WorkerCommand) -> Result<(), CliError> {
    match cmd {
        WorkerCommand::List { client } => {
            let mut api = AdminServiceClient::new(channel(&client).await?);
            let out = api.list_workers(pb::ListWorkersRequest::default()).await?.into_inner();
            print_workers(&out.workers, client.output);
        }
    }
    Ok(())
}
