//! Redis connections for the queue: a bb8 pool of multiplexed connections that notices broken ones, and error mapping.
//!
//! Not `bb8_redis::RedisConnectionManager`: its `has_broken` always says no, so
//! a pool that skips the check-out `PING` (one round trip per call is the
//! point of batching) would keep dead connections after a Redis restart. Here a
//! connection whose command fails on I/O or times out is marked broken and the
//! pool drops it.

use super::super::QueueError;
use bb8_redis::bb8;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, ServerErrorKind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long opening a TCP connection (and its handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A pool, and the last reason it could not open a connection (bb8 retries
/// connects in the background and a waiting caller only learns "timed out").
#[derive(Debug, Clone)]
pub(super) struct Pool {
    pool: bb8::Pool<Manager>,
    wait: Duration,
    last_error: LastError,
}

impl Pool {
    /// A pool that opens connections on demand, never pings on check-out, and
    /// makes a caller wait at most `wait` for a connection.
    pub(super) fn new(
        url: &str,
        response_timeout: Duration,
        max_size: u32,
        wait: Duration,
        idle: Duration,
    ) -> Result<Self, QueueError> {
        let client = Client::open(url).map_err(|e| QueueError::Unavailable(format!("bad Redis URL: {e}")))?;
        let last_error = LastError::default();
        let manager = Manager { client, response_timeout, last_error: last_error.clone() };
        let pool = bb8::Pool::builder()
            .max_size(max_size.max(1))
            .min_idle(None)
            .test_on_check_out(false)
            .connection_timeout(wait)
            .idle_timeout(Some(idle))
            .error_sink(Box::new(last_error.clone()))
            .build_unchecked(manager);
        Ok(Self { pool, wait, last_error })
    }

    /// Checks a connection out.
    pub(super) async fn get(&self) -> Result<bb8::PooledConnection<'_, Manager>, QueueError> {
        self.pool.get().await.map_err(|e| match e {
            bb8::RunError::User(e) => from_redis(e),
            bb8::RunError::TimedOut => QueueError::Unavailable(match self.last_error.get() {
                Some(cause) => format!("no Redis connection within {:?}: {cause}", self.wait),
                None => format!("no free Redis connection within {:?}", self.wait),
            }),
        })
    }
}

/// The last connect error of a pool, cleared by the next successful connect.
#[derive(Debug, Clone, Default)]
struct LastError(Arc<Mutex<Option<String>>>);

impl LastError {
    fn set(&self, e: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = e;
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl bb8::ErrorSink<RedisError> for LastError {
    fn sink(&self, e: RedisError) {
        tracing::debug!(error = %e, "Redis connect failed");
        self.set(Some(e.to_string()));
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<RedisError>> {
        Box::new(self.clone())
    }
}

/// A pooled connection; `broken` once a command failed in a way that may leave
/// the connection unusable or out of step (I/O error, timeout).
pub(super) struct Conn {
    inner: MultiplexedConnection,
    broken: bool,
}

impl Conn {
    /// Sets how long the next commands may wait for their reply (a blocking
    /// read needs its `BLOCK` time plus a margin).
    pub(super) fn set_response_timeout(&mut self, timeout: Duration) {
        self.inner.set_response_timeout(timeout);
    }

    pub(super) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T, RedisError> {
        let reply = cmd.query_async(&mut self.inner).await;
        self.note(reply)
    }

    pub(super) async fn query_pipe<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> Result<T, RedisError> {
        let reply = pipe.query_async(&mut self.inner).await;
        self.note(reply)
    }

    fn note<T>(&mut self, reply: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &reply
            && (e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error())
        {
            self.broken = true;
        }
        reply
    }
}

/// Opens multiplexed connections with a fixed default reply timeout.
#[derive(Debug, Clone)]
pub(super) struct Manager {
    client: Client,
    response_timeout: Duration,
    last_error: LastError,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(self.response_timeout));
        let inner = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        self.last_error.set(None);
        Ok(Conn { inner, broken: false })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        conn.query::<()>(&redis::cmd("PING")).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}

/// Connection trouble, timeouts and a server that cannot serve right now are
/// `Unavailable`; anything else the server or the reply parser said is `Protocol`.
pub(super) fn from_redis(e: RedisError) -> QueueError {
    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if unavailable { QueueError::Unavailable(e.to_string()) } else { QueueError::Protocol(e.to_string()) }
}
