//! WorkerService: the worker stream, converted between braid.v1 messages and the engine's session.

use super::{convert, principal_of};
use crate::domain::auth::Principal;
use crate::engine::Engine;
use crate::engine::access::CREDENTIAL_TTL;
use crate::engine::complete::Outcome;
use crate::engine::session::{Hello, Inbound, Outbound, Rejection};
use crate::store::leases::LeaseKey;
use braid_proto::v1 as pb;
use braid_proto::v1::connect_request::Message as In;
use braid_proto::v1::connect_response::Message as Out;
use braid_proto::v1::worker_service_server::WorkerService;
use futures::StreamExt;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct WorkerApi {
    engine: Engine,
    /// Cancelled when the server stops: every stream ends.
    shutdown: CancellationToken,
}

impl WorkerApi {
    pub fn new(engine: Engine, shutdown: CancellationToken) -> Self {
        Self { engine, shutdown }
    }
}

type Assignments = Pin<Box<dyn Stream<Item = Result<pb::ConnectResponse, Status>> + Send>>;

fn lease_key(l: &pb::LeaseRef) -> Option<LeaseKey> {
    Some(LeaseKey {
        task_id: Uuid::parse_str(&l.task_id).ok()?,
        attempt: l.attempt,
        lease_id: Uuid::parse_str(&l.lease_id).ok()?,
    })
}

/// A worker message as the engine sees it; None for messages that carry nothing to act on.
fn inbound(m: In) -> Option<Inbound> {
    match m {
        In::Hello(_) => None,
        In::Heartbeat(h) => Some(Inbound::Heartbeat(h.leases.iter().filter_map(lease_key).collect())),
        In::Result(r) => {
            let Ok(task_id) = Uuid::parse_str(&r.task_id) else {
                let reason = format!("task_id {:?} is not a task id", r.task_id);
                return Some(Inbound::Malformed { task_id: Uuid::nil(), attempt: r.attempt, lease_id: None, reason });
            };
            let lease_id = Uuid::parse_str(&r.lease_id).ok();
            let outcome = match r.outcome {
                Some(pb::task_result::Outcome::OutputJson(o)) => Outcome::Succeeded { output_json: o },
                Some(pb::task_result::Outcome::Error(e)) => Outcome::Failed(crate::domain::records::TaskError {
                    message: e.message,
                    kind: if e.r#type.is_empty() { "error".into() } else { e.r#type },
                    retryable: e.retryable,
                    details: (!e.details_json.is_empty()).then_some(e.details_json),
                }),
                None => {
                    let reason = "a result needs output_json or error".to_owned();
                    return Some(Inbound::Malformed { task_id, attempt: r.attempt, lease_id, reason });
                }
            };
            Some(Inbound::Result { task_id, attempt: r.attempt, lease_id, outcome })
        }
        In::Credits(c) => Some(Inbound::Credits(c.slots)),
        In::Drain(_) => Some(Inbound::Drain),
    }
}

fn outbound(o: Outbound) -> pb::ConnectResponse {
    let message = match o {
        Outbound::Welcome { worker_id, heartbeat_interval, lease_ttl } => Out::Welcome(pb::Welcome {
            worker_id: worker_id.to_string(),
            heartbeat_interval: Some(convert::duration(heartbeat_interval)),
            lease_ttl: Some(convert::duration(lease_ttl)),
            server_version: crate::VERSION.to_owned(),
        }),
        Outbound::Assign(a) => Out::Assignment(pb::TaskAssignment {
            task_id: a.key.task_id.to_string(),
            run_id: a.run_id.to_string(),
            workflow_name: a.workflow_name,
            workflow_version: a.workflow_version,
            task_name: a.task_name,
            task_type: a.task_type,
            attempt: a.key.attempt,
            max_attempts: a.max_attempts,
            lease_id: a.key.lease_id.to_string(),
            input_json: a.input_json,
            deadline: Some(convert::timestamp(a.deadline)),
            trace_context: a
                .trace_context
                .map(|t| [(crate::telemetry::spans::TRACEPARENT.to_owned(), t)].into())
                .unwrap_or_default(),
        }),
        Outbound::Cancel { key, reason } => Out::Cancel(pb::CancelTask {
            task_id: key.task_id.to_string(),
            attempt: key.attempt,
            lease_id: key.lease_id.to_string(),
            reason,
        }),
        Outbound::Ack { task_id, attempt, lease_id, rejected } => {
            let (accepted, code, reason) = match rejected {
                None => (true, tonic::Code::Ok, String::new()),
                Some((Rejection::StaleLease, r)) => (false, tonic::Code::FailedPrecondition, r),
                Some((Rejection::Malformed, r)) => (false, tonic::Code::InvalidArgument, r),
            };
            Out::Ack(pb::ResultAck {
                task_id: task_id.to_string(),
                attempt,
                lease_id: lease_id.map(|l| l.to_string()).unwrap_or_default(),
                accepted,
                code: code as i32,
                reason,
            })
        }
    };
    pb::ConnectResponse { message: Some(message) }
}

/// Checks the stream's credential every [`CREDENTIAL_TTL`] until `session` ends; once it is
/// revoked or expired, sends the status the stream ends with and ends the session. Returns a
/// token cancelled when that happened.
fn watch_credential(
    engine: Engine,
    principal: Principal,
    session: CancellationToken,
    revoked_tx: tokio::sync::oneshot::Sender<Status>,
) -> CancellationToken {
    let revoked = CancellationToken::new();
    if principal.token_id.is_none() {
        return revoked;
    }
    let flag = revoked.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CREDENTIAL_TTL);
        loop {
            tokio::select! {
                () = session.cancelled() => return,
                _ = tick.tick() => {}
            }
            match engine.still_authorized(&principal).await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    tracing::info!(tenant = principal.tenant.as_str(), reason = %why, "closing a worker stream");
                    flag.cancel();
                    let _ = revoked_tx.send(Status::unauthenticated(format!("{why}; the worker stream is closed")));
                    session.cancel();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot re-check a worker stream's credential"),
            }
        }
    });
    revoked
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    type ConnectStream = Assignments;

    async fn connect(
        &self,
        req: Request<Streaming<pb::ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let principal = principal_of(&req)?;
        let tenant = principal.tenant.clone();
        let mut stream = req.into_inner();
        let first = stream.message().await?.and_then(|m| m.message);
        let Some(In::Hello(h)) = first else {
            return Err(Status::invalid_argument("the first message on a worker stream must be Hello"));
        };
        let hello = Hello {
            worker_name: h.worker_name,
            task_types: h.task_types,
            slots: h.slots,
            labels: h.labels.into_iter().collect(),
            sdk_language: h.sdk_language,
            sdk_version: h.sdk_version,
        };
        let (tx, rx) = mpsc::channel::<Outbound>(usize::try_from(hello.slots.min(1024)).unwrap_or(64) * 2 + 16);
        let messages = stream.filter_map(|m| async move {
            match m {
                Ok(m) => m.message.and_then(inbound),
                Err(e) => {
                    tracing::debug!(error = %e, "worker stream ended with an error");
                    None
                }
            }
        });
        // Validate Hello before answering, so a bad one is a status, not a dead stream.
        let engine = self.engine.clone();
        // Ends the session: the server stopping, or the credential revoked (see `watch_credential`).
        let session = self.shutdown.child_token();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (revoked_tx, revoked_rx) = tokio::sync::oneshot::channel::<Status>();
        let revoked = watch_credential(engine.clone(), principal, session.clone(), revoked_tx);
        let stop = session.clone();
        tokio::spawn(async move {
            let messages = Box::pin(messages);
            let result = engine.serve_worker(tenant.clone(), hello, messages, tx, stop.clone(), ready_tx).await;
            stop.cancel();
            match result {
                // A revoked worker's leases go back to the queue at once.
                Ok(held) if revoked.is_cancelled() && !held.is_empty() => {
                    if let Err(e) = engine.release(&tenant, &held).await {
                        tracing::warn!(error = %e, "cannot release a revoked worker's leases");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "worker stream failed"),
            }
        });
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(Status::internal("worker session ended before it started")),
        }
        let out = ReceiverStream::new(rx).map(|o| Ok(outbound(o)));
        // The stream's last item is UNAUTHENTICATED if the credential was revoked.
        let failure = futures::stream::once(revoked_rx).filter_map(|r| async move { r.ok().map(Err) });
        Ok(Response::new(Box::pin(futures::stream::select(out, failure))))
    }
}
