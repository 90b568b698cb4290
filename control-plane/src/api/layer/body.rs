//! A response body that records its call's gRPC status when the trailers pass (unary calls whose status comes last).

use super::rpcs::{KnownRpcs, code_name};
use crate::metrics::GrpcMetrics;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// What to record once the status is known.
pub(super) struct Pending {
    pub(super) metrics: GrpcMetrics,
    pub(super) known: Arc<KnownRpcs>,
    pub(super) rpc: Option<usize>,
    pub(super) started: Instant,
}

impl Pending {
    pub(super) fn record(self, code: i32) {
        let (service, method) = self.known.labels(self.rpc);
        self.metrics.record(service, method, code_name(code), self.started.elapsed().as_secs_f64());
    }
}

/// The `grpc-status` in `headers`, if any (an unparsable one is UNKNOWN).
pub(super) fn status_of(headers: &tonic::codegen::http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status").map(|v| v.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or(2))
}

/// The response body, passed through; records `pending` at the trailers (or, without them: at
/// the end as UNKNOWN, on an error as INTERNAL, dropped early as CANCELLED).
pub struct Recorded<B> {
    inner: B,
    pending: Option<Pending>,
}

impl<B> Recorded<B> {
    pub(super) fn new(inner: B, pending: Option<Pending>) -> Self {
        Self { inner, pending }
    }

    fn finish(&mut self, code: i32) {
        if let Some(p) = self.pending.take() {
            p.record(code);
        }
    }
}

impl<B: Body + Unpin> Body for Recorded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().map(|t| status_of(t).unwrap_or(0)) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(13),
            Poll::Ready(None) => self.finish(2),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Recorded<B> {
    fn drop(&mut self) {
        self.finish(1);
    }
}
