//! `braid run watch ID`: follows a run over WatchRun, one line per event, and exits with its outcome.

use super::client::channel;
use super::output::{print_event, print_final_run};
use super::{CliError, ClientArgs};
use braid_proto::v1 as pb;
use braid_proto::v1::run_service_client::RunServiceClient;
use std::time::Duration;

/// Reconnections tried when the stream breaks before the run ends (a control plane restarting).
const RECONNECTS: u32 = 30;
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The process exit code for a finished run: 0 succeeded, 1 failed, 2 cancelled.
pub fn exit_code(state: pb::RunState) -> i32 {
    match state {
        pb::RunState::Succeeded => 0,
        pb::RunState::Cancelled => 2,
        _ => 1,
    }
}

/// Prints the run's events after `after` as they happen, then the final run, and exits with
/// [`exit_code`]. A broken stream is resumed after the last printed event, so nothing is
/// printed twice or skipped.
pub async fn watch(id: String, mut after: u64, client: &ClientArgs) -> Result<(), CliError> {
    let mut reconnects = 0;
    let run = loop {
        let mut api = RunServiceClient::new(channel(client).await?);
        let broken = match api.watch_run(pb::WatchRunRequest { run_id: id.clone(), after_sequence: after }).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(pb::WatchRunResponse { event: Some(e) })) => {
                            after = e.sequence;
                            print_event(&e, client.output);
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::Unavailable => Some(status),
            Err(status) => return Err(status.into()),
        };
        let run = api.get_run(pb::GetRunRequest { run_id: id.clone() }).await?.into_inner().run.unwrap_or_default();
        let state = pb::RunState::try_from(run.state).unwrap_or_default();
        if matches!(state, pb::RunState::Succeeded | pb::RunState::Failed | pb::RunState::Cancelled) {
            break run;
        }
        reconnects += 1;
        if reconnects > RECONNECTS {
            let why = broken.map_or_else(|| "the stream ended".to_owned(), |s| s.message().to_owned());
            return Err(CliError::Input(format!("run {id} is still running but the watch broke: {why}")));
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    };
    print_final_run(&run, client.output);
    let code = exit_code(pb::RunState::try_from(run.state).unwrap_or_default());
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::exit_code;
    use braid_proto::v1::RunState;

    #[test]
    fn the_exit_code_is_the_outcome() {
        assert_eq!(exit_code(RunState::Succeeded), 0);
        assert_eq!(exit_code(RunState::Failed), 1);
        assert_eq!(exit_code(RunState::Cancelled), 2);
    }
}
