//! The worker's event loop: one `select!` over shutdown, finished tasks, the stream and timers.

mod execute;
mod inbound;
mod link;
mod outbox;
mod shutdown;

pub(crate) use crate::builder::Config;

use crate::backoff::Backoff;
use crate::context::CancelSignal;
use crate::stats::Counters;
use crate::worker::Shared;
use crate::{TaskRef, WorkerError, WorkerEvent};
use braid_proto::v1 as pb;
use braid_proto::v1::connect_response::Message as In;
use execute::{Finished, far_future};
use link::{Link, LinkEvent, Opened, Session};
use shutdown::Drain;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::{self, JoinSet};
use tokio::time::Instant;

/// Used when `Welcome` leaves `heartbeat_interval` unset or zero.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Used when `Welcome` leaves `lease_ttl` unset or zero.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The fencing token of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LeaseKey {
    task_id: String,
    attempt: u32,
    lease_id: String,
}

impl LeaseKey {
    fn of(task: &TaskRef) -> Self {
        Self { task_id: task.task_id.clone(), attempt: task.attempt, lease_id: task.lease_id.clone() }
    }

    fn to_proto(&self) -> pb::LeaseRef {
        pb::LeaseRef { task_id: self.task_id.clone(), attempt: self.attempt, lease_id: self.lease_id.clone() }
    }
}

/// A lease whose task runs or waits for a slot.
struct Held {
    task: TaskRef,
    signal: CancelSignal,
}

/// A result not yet sent on the current stream, or sent and not yet acknowledged.
struct Pending {
    task: TaskRef,
    result: pb::TaskResult,
}

/// Everything the event loop owns.
pub(crate) struct Runtime {
    config: Arc<Config>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    tasks: JoinSet<Finished>,
    ids: HashMap<task::Id, LeaseKey>,
    held: HashMap<LeaseKey, Held>,
    unsent: VecDeque<Pending>,
    unacked: Vec<Pending>,
    heartbeat_every: Duration,
    lease_ttl: Duration,
    /// When a heartbeat was last sent on a live stream: leases are good until `+ lease_ttl`.
    extended_at: Option<Instant>,
    drain: Option<Drain>,
    /// The server ended the stream after our half-close: done.
    closed: bool,
    backoff: Backoff,
}

impl Runtime {
    pub(crate) fn new(config: Arc<Config>, shared: Arc<Shared>) -> Self {
        let slots = usize::try_from(config.slots).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        let (initial, max) = config.backoff;
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            config,
            shared,
            tasks: JoinSet::new(),
            ids: HashMap::new(),
            held: HashMap::new(),
            unsent: VecDeque::new(),
            unacked: Vec::new(),
            heartbeat_every: DEFAULT_HEARTBEAT,
            lease_ttl: DEFAULT_LEASE_TTL,
            extended_at: None,
            drain: None,
            closed: false,
            backoff: Backoff::new(initial, max),
        }
    }

    pub(crate) async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        let drain_requested = self.shared.drain.clone();
        let abort_requested = self.shared.abort.clone();
        tracing::info!(endpoint = %self.config.endpoint.uri(), name = %self.config.name, "connecting");
        let mut link = Link::Connecting(link::open(self.config.clone()));
        loop {
            if let Some(done) = self.exit_check(&mut link) {
                return done;
            }
            let timer = self.next_timer(&link);
            let draining = self.drain.is_some();
            tokio::select! {
                () = &mut shutdown, if !draining => self.begin_drain(&link, "shutdown requested"),
                () = drain_requested.cancelled(), if !draining => self.begin_drain(&link, "shutdown requested"),
                () = abort_requested.cancelled() => {
                    self.abort();
                    return Ok(());
                }
                Some(joined) = self.tasks.join_next_with_id() => self.on_joined(joined, &link),
                event = link.next() => self.on_link(event, &mut link)?,
                () = tokio::time::sleep_until(timer.unwrap_or_else(far_future)), if timer.is_some() => self.on_timer(&link),
            }
        }
    }

    fn on_link(&mut self, event: LinkEvent, link: &mut Link) -> Result<(), WorkerError> {
        match event {
            LinkEvent::RetryNow => *link = Link::Connecting(link::open(self.config.clone())),
            LinkEvent::Opened(Ok(opened)) => *link = Link::Up(self.on_welcome(opened)),
            LinkEvent::Opened(Err(error)) if error.is_permanent() => {
                tracing::error!(%error, "the server refused the worker; stopping");
                self.abort();
                return Err(match error {
                    link::LinkError::Status(status) => WorkerError::Refused(status),
                    other => WorkerError::Refused(Box::new(tonic::Status::unknown(other.to_string()))),
                });
            }
            LinkEvent::Opened(Err(error)) => self.retry_later(link, &error.to_string()),
            LinkEvent::Message(Ok(Some(response))) => match response.message {
                Some(In::Assignment(assignment)) => self.on_assignment(assignment, link),
                Some(In::Cancel(cancel)) => self.on_cancel(&cancel),
                Some(In::Ack(ack)) => self.on_ack(ack),
                Some(In::Welcome(_)) => tracing::warn!("ignoring a second Welcome on the stream"),
                None => tracing::debug!("ignoring an empty ConnectResponse"),
            },
            LinkEvent::Message(Ok(None)) => self.on_stream_end(link, "the server ended the stream"),
            LinkEvent::Message(Err(status)) => {
                let why = format!("the stream failed: {}: {}", status.code(), status.message());
                self.on_stream_end(link, &why);
            }
            LinkEvent::HeartbeatDue => {
                if let Some(session) = link.session() {
                    self.heartbeat(session);
                }
            }
        }
        Ok(())
    }

    /// A new stream: adopt the server's timings, re-announce held leases, resume a drain, send
    /// pending results.
    fn on_welcome(&mut self, opened: Opened) -> Session {
        let welcome = opened.welcome.clone();
        self.heartbeat_every = duration_or(welcome.heartbeat_interval, DEFAULT_HEARTBEAT, "heartbeat_interval");
        self.lease_ttl = duration_or(welcome.lease_ttl, DEFAULT_LEASE_TTL, "lease_ttl");
        if self.heartbeat_every >= self.lease_ttl {
            tracing::warn!(heartbeat = ?self.heartbeat_every, lease_ttl = ?self.lease_ttl, "heartbeat interval is not shorter than the lease TTL");
        }
        self.backoff.reset();
        Counters::bump(&self.shared.counters.connects);
        tracing::info!(
            worker_id = %welcome.worker_id,
            server_version = %welcome.server_version,
            heartbeat = ?self.heartbeat_every,
            lease_ttl = ?self.lease_ttl,
            held = self.held.len(),
            pending_results = self.unsent.len(),
            "connected"
        );
        let session = Session::new(opened, welcome.worker_id.clone(), self.heartbeat_every);
        self.heartbeat(&session);
        if let Some(drain) = &self.drain {
            session.send(link_drain(&drain.reason));
        }
        self.flush(&session);
        self.config
            .emit(WorkerEvent::Connected { worker_id: welcome.worker_id, server_version: welcome.server_version });
        session
    }

    fn on_stream_end(&mut self, link: &mut Link, why: &str) {
        if link.session().is_some_and(|s| !s.is_open()) {
            tracing::info!("stream closed after drain");
            self.closed = true;
            return;
        }
        tracing::warn!(error = why, held = self.held.len(), unacked = self.unacked.len(), "disconnected");
        self.config.emit(WorkerEvent::Disconnected { error: why.to_owned() });
        // Results sent on the broken stream and not acknowledged are sent again on the next one.
        for pending in self.unacked.drain(..).rev() {
            self.unsent.push_front(pending);
        }
        self.retry_later(link, why);
    }

    fn retry_later(&mut self, link: &mut Link, why: &str) {
        let delay = self.backoff.next_delay();
        tracing::warn!(
            attempt = self.backoff.failures(),
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            endpoint = %self.config.endpoint.uri(),
            error = why,
            "reconnecting after a delay"
        );
        *link = Link::Waiting(Box::pin(tokio::time::sleep(delay)));
    }

    fn update_in_flight(&self) {
        let held = u64::try_from(self.held.len()).unwrap_or(u64::MAX);
        self.shared.counters.in_flight.store(held, std::sync::atomic::Ordering::Relaxed);
    }
}

fn link_drain(reason: &str) -> braid_proto::v1::connect_request::Message {
    braid_proto::v1::connect_request::Message::Drain(pb::Drain { reason: reason.to_owned() })
}

/// A positive protobuf duration, or `default` (with a warning).
fn duration_or(value: Option<prost_types::Duration>, default: Duration, field: &str) -> Duration {
    match value.and_then(|d| Duration::try_from(d).ok()).filter(|d| !d.is_zero()) {
        Some(d) => d,
        None => {
            tracing::warn!(field, ?default, "Welcome has no usable {field}; using the default");
            default
        }
    }
}
