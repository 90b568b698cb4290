//! The tower layer in front of every gRPC service: counts each call by service, method and gRPC code, and times it.
//!
//! The code is the response's `grpc-status`: a header when the call failed (tonic answers errors
//! trailers-only), else the trailer that ends a unary call (recorded as it passes, with the
//! time to it). A server-streaming call (`WatchRun`, `Connect`) is counted when its response
//! starts, not when the stream ends hours later. Only paths of RPCs this server serves become
//! label values (a client cannot grow the series by inventing paths).

mod body;
mod rpcs;

pub use body::Recorded;
pub use rpcs::code_name;

use crate::metrics::GrpcMetrics;
use body::{Pending, status_of};
use http_body::Body;
use rpcs::KnownRpcs;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tower::{Layer, Service};

/// Records `braid_grpc_requests_total` and `braid_grpc_request_duration_seconds` for every call.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: GrpcMetrics,
    known: Arc<KnownRpcs>,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: GrpcMetrics) -> Self {
        Self { metrics, known: Arc::new(KnownRpcs::load()) }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService { inner, metrics: self.metrics.clone(), known: self.known.clone() }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
    known: Arc<KnownRpcs>,
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Body + Unpin,
{
    type Response = http::Response<Recorded<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = self.known.find(req.uri().path());
        let pending =
            Pending { metrics: self.metrics.clone(), known: self.known.clone(), rpc, started: Instant::now() };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = match fut.await {
                Ok(res) => res,
                Err(e) => {
                    // No response at all: as a client would see it.
                    pending.record(13);
                    return Err(e);
                }
            };
            let now = status_of(res.headers())
                .or_else(|| (pending.known.streams(pending.rpc) || res.body().is_end_stream()).then_some(0));
            Ok(match now {
                Some(code) => {
                    pending.record(code);
                    res.map(|b| Recorded::new(b, None))
                }
                None => res.map(|b| Recorded::new(b, Some(pending))),
            })
        })
    }
}

#[cfg(test)]
mod tests;
