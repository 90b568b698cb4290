//! The stream to the server: opening it (`Hello` then `Welcome`), sending on it, waiting on it.

use super::Config;
use braid_proto::v1 as pb;
use braid_proto::v1::connect_request::Message as Out;
use braid_proto::v1::connect_response::Message as In;
use braid_proto::v1::worker_service_client::WorkerServiceClient;
use futures::future::BoxFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Code, Status, Streaming};

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("cannot connect: {}", chain(.0))]
    Transport(#[from] tonic::transport::Error),
    #[error("{}", status_text(.0))]
    Status(Box<Status>),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("the server closed the stream before Welcome")]
    Closed,
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl LinkError {
    /// A refusal that retrying cannot fix.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Self::Status(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument))
    }
}

/// What a status says; one made from a transport failure (e.g. a TLS handshake the server
/// refused) says so, with its causes.
fn status_text(status: &Status) -> String {
    match std::error::Error::source(status) {
        Some(source) => format!("the connection failed: {}: {}", status.message(), chain(source)),
        None => format!("the server answered {}: {}", status.code(), status.message()),
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Layers often repeat their source's text; keep each part once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Largest message on the worker stream, either way (the control plane's limit too).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A stream whose `Welcome` arrived.
pub(crate) struct Opened {
    pub(crate) tx: mpsc::UnboundedSender<pb::ConnectRequest>,
    pub(crate) rx: Streaming<pb::ConnectResponse>,
    pub(crate) welcome: pb::Welcome,
}

/// Connects, sends `Hello`, and waits for `Welcome`.
pub(crate) fn open(config: Arc<Config>) -> BoxFuture<'static, Result<Opened, LinkError>> {
    Box::pin(async move {
        let bound = config.connect_timeout;
        let channel = config.endpoint.connect().await?;
        // Assignments carry whole payloads (the control plane reads large ones back from object
        // storage): accept what the control plane may send, not tonic's default of 4 MiB.
        let mut client = WorkerServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let (tx, outbound) = mpsc::unbounded_channel();
        let mut task_types: Vec<String> = config.handlers.keys().cloned().collect();
        task_types.sort();
        let hello = pb::Hello {
            worker_name: config.name.clone(),
            task_types,
            slots: config.slots,
            labels: config.labels.clone(),
            sdk_language: "rust".to_owned(),
            sdk_version: crate::SDK_VERSION.to_owned(),
        };
        tx.send(pb::ConnectRequest { message: Some(Out::Hello(hello)) }).map_err(|_| LinkError::Closed)?;
        let mut request = tonic::Request::new(UnboundedReceiverStream::new(outbound));
        if let Some(auth) = &config.authorization {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        let response = tokio::time::timeout(bound, client.connect(request))
            .await
            .map_err(|_| LinkError::Timeout("the stream to open"))?
            .map_err(|s| LinkError::Status(Box::new(s)))?;
        let mut rx = response.into_inner();
        let first = tokio::time::timeout(bound, rx.message())
            .await
            .map_err(|_| LinkError::Timeout("Welcome"))?
            .map_err(|s| LinkError::Status(Box::new(s)))?;
        match first.and_then(|m| m.message) {
            Some(In::Welcome(welcome)) => Ok(Opened { tx, rx, welcome }),
            Some(other) => Err(LinkError::Protocol(format!("expected Welcome first, got {}", name_of(&other)))),
            None => Err(LinkError::Closed),
        }
    })
}

fn name_of(message: &In) -> &'static str {
    match message {
        In::Welcome(_) => "Welcome",
        In::Assignment(_) => "TaskAssignment",
        In::Cancel(_) => "CancelTask",
        In::Ack(_) => "ResultAck",
    }
}

/// An established stream.
pub(crate) struct Session {
    /// `None` once half-closed.
    tx: Option<mpsc::UnboundedSender<pb::ConnectRequest>>,
    rx: Streaming<pb::ConnectResponse>,
    heartbeat: Interval,
    pub(crate) worker_id: String,
    /// After a half-close: when to stop waiting for the server to end the stream.
    pub(crate) close_by: Option<Instant>,
}

impl Session {
    pub(crate) fn new(opened: Opened, worker_id: String, heartbeat_every: Duration) -> Self {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { tx: Some(opened.tx), rx: opened.rx, heartbeat, worker_id, close_by: None }
    }

    /// Queues a message; false when the stream is half-closed or gone.
    pub(crate) fn send(&self, message: Out) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(pb::ConnectRequest { message: Some(message) }).is_ok())
    }

    pub(crate) fn is_open(&self) -> bool {
        self.tx.is_some()
    }

    /// Ends the send side; the server then ends the stream.
    pub(crate) fn half_close(&mut self, wait: Duration) {
        self.tx = None;
        self.close_by = Some(Instant::now() + wait);
    }
}

/// The connection state.
pub(crate) enum Link {
    /// Waiting before the next connection attempt.
    Waiting(Pin<Box<Sleep>>),
    Connecting(BoxFuture<'static, Result<Opened, LinkError>>),
    Up(Session),
}

/// What the link has to say.
pub(crate) enum LinkEvent {
    RetryNow,
    Opened(Result<Opened, LinkError>),
    Message(Result<Option<pb::ConnectResponse>, Status>),
    HeartbeatDue,
}

impl Link {
    /// The next event; cancel-safe.
    pub(crate) async fn next(&mut self) -> LinkEvent {
        match self {
            Self::Waiting(sleep) => {
                sleep.as_mut().await;
                LinkEvent::RetryNow
            }
            Self::Connecting(opening) => LinkEvent::Opened(opening.await),
            Self::Up(session) => {
                let open = session.is_open();
                tokio::select! {
                    message = session.rx.message() => LinkEvent::Message(message),
                    _ = session.heartbeat.tick(), if open => LinkEvent::HeartbeatDue,
                }
            }
        }
    }

    pub(crate) fn session(&self) -> Option<&Session> {
        match self {
            Self::Up(session) => Some(session),
            Self::Waiting(_) | Self::Connecting(_) => None,
        }
    }

    pub(crate) fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Self::Up(session) => Some(session),
            Self::Waiting(_) | Self::Connecting(_) => None,
        }
    }
}
