//! A scripted fake `WorkerService` for the SDK's tests: each stream is handed to the test to drive.
#![allow(dead_code)]

use braid_worker::proto as pb;
use braid_worker::proto::worker_service_server::{WorkerService, WorkerServiceServer};
use braid_worker::{Worker, WorkerBuilder, WorkerError, WorkerHandle};
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

pub use pb::connect_request::Message as Out;
pub use pb::connect_response::Message as In;

/// Bound on every wait in the tests (a hang fails the test instead of blocking it).
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, panicking after [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A WorkerService on 127.0.0.1:0 whose streams the test drives.
pub struct FakeServer {
    pub endpoint: String,
    streams: mpsc::UnboundedReceiver<FakeStream>,
    refuse: Arc<Mutex<Option<tonic::Code>>>,
    stop: CancellationToken,
}

struct Service {
    streams: mpsc::UnboundedSender<FakeStream>,
    refuse: Arc<Mutex<Option<tonic::Code>>>,
}

#[tonic::async_trait]
impl WorkerService for Service {
    type ConnectStream = UnboundedReceiverStream<Result<pb::ConnectResponse, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<pb::ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let refusal = *self.refuse.lock().expect("lock");
        if let Some(code) = refusal {
            return Err(Status::new(code, "fake server refuses streams"));
        }
        let (outbound, rx) = mpsc::unbounded_channel();
        let stream = FakeStream { inbound: request.into_inner(), outbound: Some(outbound) };
        self.streams.send(stream).map_err(|_| Status::unavailable("test gone"))?;
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }
}

impl FakeServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, streams) = mpsc::unbounded_channel();
        let refuse = Arc::new(Mutex::new(None));
        let stop = CancellationToken::new();
        let service = Service { streams: tx, refuse: refuse.clone() };
        let serve = tonic::transport::Server::builder()
            .add_service(WorkerServiceServer::new(service))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.clone().cancelled_owned());
        tokio::spawn(serve);
        Self { endpoint: format!("http://{addr}"), streams, refuse, stop }
    }

    /// The next stream a worker opens.
    pub async fn accept(&mut self) -> FakeStream {
        within("a stream", self.streams.recv()).await.expect("server running")
    }

    /// While on, Connect fails with UNAVAILABLE.
    pub fn refuse(&self, on: bool) {
        self.refuse_with(on.then_some(tonic::Code::Unavailable));
    }

    /// While set, Connect fails with this code.
    pub fn refuse_with(&self, code: Option<tonic::Code>) {
        *self.refuse.lock().expect("lock") = code;
    }

    /// A builder pointed at this server, with short reconnect delays.
    pub fn builder(&self) -> WorkerBuilder {
        Worker::builder()
            .endpoint(&self.endpoint)
            .name("test-worker")
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
            .connect_timeout(Duration::from_secs(5))
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One worker stream, seen from the server.
pub struct FakeStream {
    inbound: Streaming<pb::ConnectRequest>,
    /// Dropped (ending the stream, as the real server does) once the worker half-closes.
    outbound: Option<mpsc::UnboundedSender<Result<pb::ConnectResponse, Status>>>,
}

impl FakeStream {
    /// The next message from the worker; `None` once it half-closed (the stream is then ended
    /// from this side too) or the stream failed.
    pub async fn recv(&mut self) -> Option<Out> {
        match within("a worker message", self.inbound.message()).await {
            Ok(Some(request)) => Some(request.message.expect("a message")),
            Ok(None) | Err(_) => {
                self.outbound = None;
                None
            }
        }
    }

    /// The next message that is not a heartbeat.
    pub async fn recv_skipping_heartbeats(&mut self) -> Option<Out> {
        loop {
            match self.recv().await {
                Some(Out::Heartbeat(_)) => {}
                other => return other,
            }
        }
    }

    /// The next heartbeat, failing on any other message.
    pub async fn heartbeat(&mut self) -> pb::Heartbeat {
        match self.recv().await {
            Some(Out::Heartbeat(hb)) => hb,
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }

    /// The next result (heartbeats skipped).
    pub async fn result(&mut self) -> pb::TaskResult {
        match self.recv_skipping_heartbeats().await {
            Some(Out::Result(result)) => result,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    pub fn send(&self, message: In) {
        if let Some(outbound) = &self.outbound {
            let _ = outbound.send(Ok(pb::ConnectResponse { message: Some(message) }));
        }
    }

    /// Ends the stream with an error status.
    pub fn fail(&self, status: Status) {
        if let Some(outbound) = &self.outbound {
            let _ = outbound.send(Err(status));
        }
    }

    /// Expects `Hello`, answers `Welcome`, returns the hello.
    pub async fn handshake(&mut self, heartbeat: Duration, lease_ttl: Duration) -> pb::Hello {
        let hello = match self.recv().await {
            Some(Out::Hello(hello)) => hello,
            other => panic!("expected Hello, got {other:?}"),
        };
        self.send(In::Welcome(pb::Welcome {
            worker_id: "w-1".to_owned(),
            heartbeat_interval: Some(proto_duration(heartbeat)),
            lease_ttl: Some(proto_duration(lease_ttl)),
            server_version: "fake".to_owned(),
        }));
        hello
    }

    pub fn assign(&self, assignment: pb::TaskAssignment) {
        self.send(In::Assignment(assignment));
    }

    pub fn ack(&self, result: &pb::TaskResult, accepted: bool, code: i32, reason: &str) {
        self.send(In::Ack(pb::ResultAck {
            task_id: result.task_id.clone(),
            attempt: result.attempt,
            lease_id: result.lease_id.clone(),
            accepted,
            code,
            reason: reason.to_owned(),
        }));
    }
}

pub fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d).expect("duration fits")
}

/// An attempt-1 assignment of `task_type` with lease `L-<task_id>`.
pub fn assignment(task_id: &str, task_type: &str, input_json: &str) -> pb::TaskAssignment {
    pb::TaskAssignment {
        task_id: task_id.to_owned(),
        run_id: "run-1".to_owned(),
        workflow_name: "wf".to_owned(),
        workflow_version: 2,
        task_name: format!("name-{task_id}"),
        task_type: task_type.to_owned(),
        attempt: 1,
        max_attempts: 3,
        lease_id: format!("L-{task_id}"),
        input_json: input_json.to_owned(),
        deadline: Some(prost_types::Timestamp::from(SystemTime::now() + Duration::from_secs(3600))),
        trace_context: [("traceparent".to_owned(), "00-abc-def-01".to_owned())].into(),
    }
}

pub fn lease(task_id: &str, attempt: u32, lease_id: &str) -> pb::LeaseRef {
    pb::LeaseRef { task_id: task_id.to_owned(), attempt, lease_id: lease_id.to_owned() }
}

/// The worker running in the background.
pub struct Running {
    pub handle: WorkerHandle,
    pub join: JoinHandle<Result<(), WorkerError>>,
}

impl Running {
    pub fn start(builder: WorkerBuilder) -> Self {
        let worker = builder.build().expect("builds");
        let handle = worker.handle();
        let join = tokio::spawn(worker.run_until(std::future::pending()));
        Self { handle, join }
    }

    /// Waits for `run_until` to return.
    pub async fn finished(self) -> Result<(), WorkerError> {
        within("the worker to return", self.join).await.expect("worker task")
    }
}

/// The output of a successful result, parsed.
pub fn output(result: &pb::TaskResult) -> serde_json::Value {
    match &result.outcome {
        Some(pb::task_result::Outcome::OutputJson(text)) => serde_json::from_str(text).expect("output is JSON"),
        other => panic!("expected an output, got {other:?}"),
    }
}

/// The error of a failed result.
pub fn error(result: &pb::TaskResult) -> pb::TaskError {
    match &result.outcome {
        Some(pb::task_result::Outcome::Error(error)) => error.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}
