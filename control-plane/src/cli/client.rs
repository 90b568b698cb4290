//! The operator verbs: `braid workflow …` and `braid run …`, through the gRPC API.

use super::output::{print_run, print_runs, print_workflow, print_workflows};
use super::{CliError, ClientArgs, RunCommand, WorkflowCommand};
use crate::api::convert::definition_to_proto;
use crate::app::tls::{PemKind, chain, read_pem};
use crate::domain::definition::WorkflowDefinition;
use braid_proto::v1 as pb;
use braid_proto::v1::run_service_client::RunServiceClient;
use braid_proto::v1::workflow_service_client::WorkflowServiceClient;
use std::path::Path;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A channel whose every call carries the `--token` (if any) as `authorization: Bearer …`.
pub(super) type Authed = InterceptedService<Channel, Bearer>;

/// Adds the bearer token to each call.
#[derive(Debug, Clone)]
pub(super) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub(super) async fn channel(client: &ClientArgs) -> Result<Authed, CliError> {
    let fail = |reason: String| CliError::Connect { endpoint: client.endpoint.clone(), reason };
    let bearer = match client.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            format!("Bearer {t}").parse().map_err(|_| CliError::Input("--token: not a valid header value".into()))?,
        ),
    };
    let endpoint = Endpoint::from_shared(client.endpoint.clone())
        .map_err(|e| fail(e.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(5));
    let endpoint = match client_tls(client)? {
        Some(tls) => endpoint.tls_config(tls).map_err(|e| fail(chain(&e)))?,
        None => endpoint,
    };
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| fail(format!("{} (is a control plane running? `braid dev` starts one)", chain(&e))))?;
    Ok(InterceptedService::new(channel, Bearer(bearer)))
}

/// The TLS settings of `--ca-cert`, `--client-cert` and `--client-key`; `None` for an `http://` endpoint.
fn client_tls(client: &ClientArgs) -> Result<Option<ClientTlsConfig>, CliError> {
    let https = client.endpoint.starts_with("https://");
    let given =
        [("--ca-cert", &client.ca_cert), ("--client-cert", &client.client_cert), ("--client-key", &client.client_key)];
    if !https {
        return match given.iter().find(|(_, path)| path.is_some()) {
            Some((flag, _)) => Err(CliError::Input(format!(
                "{flag} is set but the endpoint {} is not https://; TLS is used only with https:// endpoints",
                client.endpoint
            ))),
            None => Ok(None),
        };
    }
    let Some(ca) = &client.ca_cert else {
        return Err(CliError::Input(format!(
            "the endpoint {} is https:// and needs --ca-cert (env BRAID_CA_CERT): the CA that signed the server's certificate",
            client.endpoint
        )));
    };
    let read = |flag, path: &Path, kind| read_pem(flag, path, kind).map_err(CliError::Input);
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca-cert", ca, PemKind::Certificates)?));
    if let (Some(cert), Some(key)) = (&client.client_cert, &client.client_key) {
        let cert = read("--client-cert", cert, PemKind::Certificates)?;
        let key = read("--client-key", key, PemKind::PrivateKey)?;
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(Some(tls))
}

fn read_definition(file: &Path) -> Result<pb::WorkflowDefinition, CliError> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    let def = WorkflowDefinition::from_file_contents(&file.to_string_lossy(), &text)
        .map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
    Ok(definition_to_proto(&def))
}

pub async fn workflow(cmd: WorkflowCommand) -> Result<(), CliError> {
    match cmd {
        WorkflowCommand::Apply { file, client } => {
            let definition = read_definition(&file)?;
            let mut api = WorkflowServiceClient::new(channel(&client).await?);
            let out = api.put_workflow(pb::PutWorkflowRequest { definition: Some(definition) }).await?.into_inner();
            let w = out.workflow.unwrap_or_default();
            match client.output {
                super::Output::Json => print_workflow(&w, Some(out.created), client.output),
                super::Output::Text if out.created => outln!("workflow {} version {} created", w.name, w.version),
                super::Output::Text => outln!("workflow {} version {} unchanged (same content)", w.name, w.version),
            }
        }
        WorkflowCommand::Validate { file, client } => {
            let definition = read_definition(&file)?;
            let mut api = WorkflowServiceClient::new(channel(&client).await?);
            let out =
                api.validate_workflow(pb::ValidateWorkflowRequest { definition: Some(definition) }).await?.into_inner();
            if out.valid {
                outln!("{}: valid", file.display());
            } else {
                let lines: Vec<String> = out.errors.iter().map(|e| format!("  {}: {}", e.path, e.reason)).collect();
                return Err(CliError::Input(format!(
                    "{}: {} problem(s):\n{}",
                    file.display(),
                    out.errors.len(),
                    lines.join("\n")
                )));
            }
        }
        WorkflowCommand::List { client } => {
            let mut api = WorkflowServiceClient::new(channel(&client).await?);
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let page = pb::PageRequest { page_size: 500, page_token: token };
                let out = api.list_workflows(pb::ListWorkflowsRequest { page: Some(page) }).await?.into_inner();
                all.extend(out.workflows);
                if out.next_page_token.is_empty() {
                    break;
                }
                token = out.next_page_token;
            }
            print_workflows(&all, client.output);
        }
        WorkflowCommand::Get { name, version, client } => {
            let mut api = WorkflowServiceClient::new(channel(&client).await?);
            let req = pb::GetWorkflowRequest { name, version: version.unwrap_or(0) };
            let w = api.get_workflow(req).await?.into_inner().workflow.unwrap_or_default();
            print_workflow(&w, None, client.output);
        }
    }
    Ok(())
}

fn read_input(input: &str) -> Result<String, CliError> {
    match input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| CliError::Input(format!("--input {path}: {e}"))),
        None => Ok(input.to_owned()),
    }
}

fn run_state(name: &str) -> Result<i32, CliError> {
    let state = match name {
        "queued" => pb::RunState::Queued,
        "running" => pb::RunState::Running,
        "succeeded" => pb::RunState::Succeeded,
        "failed" => pb::RunState::Failed,
        "cancelled" => pb::RunState::Cancelled,
        other => {
            return Err(CliError::Input(format!(
                "--state {other:?}: expected queued, running, succeeded, failed or cancelled"
            )));
        }
    };
    Ok(state.into())
}

pub async fn run(cmd: RunCommand) -> Result<(), CliError> {
    match cmd {
        RunCommand::Start { workflow, input, idempotency_key, version, priority, concurrency_key, client } => {
            let req = pb::TriggerRunRequest {
                workflow_name: workflow,
                workflow_version: version.unwrap_or(0),
                input_json: read_input(&input)?,
                idempotency_key: idempotency_key.unwrap_or_default(),
                priority: crate::api::flow::priority(priority).into(),
                concurrency_key: concurrency_key.unwrap_or_default(),
            };
            let mut api = RunServiceClient::new(channel(&client).await?);
            let out = api.trigger_run(req).await?.into_inner();
            let run = out.run.unwrap_or_default();
            if client.output == super::Output::Text {
                let how = if out.created { "created" } else { "already existed (same idempotency key)" };
                outln!("run {} {how}", run.id);
            }
            print_run(&run, Some(out.created), client.output);
        }
        RunCommand::Get { id, client } => {
            let mut api = RunServiceClient::new(channel(&client).await?);
            let run = api.get_run(pb::GetRunRequest { run_id: id }).await?.into_inner().run.unwrap_or_default();
            print_run(&run, None, client.output);
        }
        RunCommand::Watch { id, after, client } => super::watch::watch(id, after, &client).await?,
        RunCommand::Cancel { id, reason, client } => {
            let mut api = RunServiceClient::new(channel(&client).await?);
            let run =
                api.cancel_run(pb::CancelRunRequest { run_id: id, reason }).await?.into_inner().run.unwrap_or_default();
            print_run(&run, None, client.output);
        }
        RunCommand::List { workflow, state, schedule, limit, page_token, client } => {
            let states = state.iter().map(|s| run_state(s)).collect::<Result<Vec<_>, _>>()?;
            let req = pb::ListRunsRequest {
                workflow_name: workflow.unwrap_or_default(),
                states,
                created_after: None,
                created_before: None,
                schedule_id: schedule.unwrap_or_default(),
                page: Some(pb::PageRequest { page_size: limit, page_token: page_token.unwrap_or_default() }),
            };
            let mut api = RunServiceClient::new(channel(&client).await?);
            let out = api.list_runs(req).await?.into_inner();
            print_runs(&out.runs, &out.next_page_token, client.output);
        }
    }
    Ok(())
}
