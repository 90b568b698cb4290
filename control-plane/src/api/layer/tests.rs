//! The layer counts calls with the right labels: status from a header, from the trailers, streams at start.

use super::*;
use crate::metrics::Metrics;
use std::convert::Infallible;
use tonic::codegen::Bytes;
use tower::ServiceExt;

/// A unary success as tonic sends it: one message, then trailers with `grpc-status`.
struct Unary {
    step: u8,
    status: &'static str,
}

impl Body for Unary {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.step += 1;
        Poll::Ready(match self.step {
            1 => Some(Ok(http_body::Frame::data(Bytes::from_static(b"\0\0\0\0\0")))),
            2 => {
                let mut t = http::HeaderMap::new();
                t.insert("grpc-status", http::HeaderValue::from_static(self.status));
                Some(Ok(http_body::Frame::trailers(t)))
            }
            _ => None,
        })
    }
}

/// Calls `path` through the layer on a service answering with `header` as `grpc-status`
/// (trailers-only), or else a message and `trailer`; reads the whole body.
async fn call(metrics: &Metrics, path: &str, header: Option<&'static str>, trailer: &'static str) {
    let svc = tower::service_fn(move |_req: http::Request<()>| async move {
        let mut res = http::Response::new(Unary { step: 0, status: trailer });
        if let Some(s) = header {
            res.headers_mut().insert("grpc-status", http::HeaderValue::from_static(s));
            res.body_mut().step = 2;
        }
        Ok::<_, Infallible>(res)
    });
    let svc = GrpcMetricsLayer::new(metrics.grpc().clone()).layer(svc);
    let req = http::Request::builder().uri(format!("http://localhost{path}")).body(()).unwrap();
    let mut body = svc.oneshot(req).await.unwrap().into_body();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        frame.unwrap();
    }
}

#[tokio::test]
async fn a_call_is_counted_with_its_service_method_and_code() {
    let m = Metrics::new().unwrap();
    call(&m, "/braid.v1.RunService/TriggerRun", None, "0").await;
    call(&m, "/braid.v1.RunService/TriggerRun", None, "0").await;
    call(&m, "/braid.v1.RunService/TriggerRun", Some("3"), "0").await;
    call(&m, "/braid.v1.WorkflowService/GetWorkflow", Some("5"), "0").await;
    // The status only in the trailers.
    call(&m, "/braid.v1.WorkflowService/GetWorkflow", None, "8").await;
    call(&m, "/grpc.health.v1.Health/Check", None, "0").await;
    let text = m.render();
    for line in [
        r#"braid_grpc_requests_total{code="OK",method="TriggerRun",service="braid.v1.RunService"} 2"#,
        r#"braid_grpc_requests_total{code="INVALID_ARGUMENT",method="TriggerRun",service="braid.v1.RunService"} 1"#,
        r#"braid_grpc_requests_total{code="NOT_FOUND",method="GetWorkflow",service="braid.v1.WorkflowService"} 1"#,
        r#"braid_grpc_requests_total{code="RESOURCE_EXHAUSTED",method="GetWorkflow",service="braid.v1.WorkflowService"} 1"#,
        r#"braid_grpc_requests_total{code="OK",method="Check",service="grpc.health.v1.Health"} 1"#,
        r#"braid_grpc_request_duration_seconds_count{method="TriggerRun",service="braid.v1.RunService"} 3"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn a_stream_is_counted_when_it_opens() {
    let m = Metrics::new().unwrap();
    let svc = tower::service_fn(|_req: http::Request<()>| async move {
        Ok::<_, Infallible>(http::Response::new(Unary { step: 0, status: "0" }))
    });
    let svc = GrpcMetricsLayer::new(m.grpc().clone()).layer(svc);
    let req = http::Request::builder().uri("http://localhost/braid.v1.RunService/WatchRun").body(()).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    // Counted before any of the stream is read.
    let series = r#"braid_grpc_requests_total{code="OK",method="WatchRun",service="braid.v1.RunService"} 1"#;
    assert!(m.render().contains(series), "{series} missing from:\n{}", m.render());
    drop(res);
    assert!(m.render().contains(series), "counted once");
}

#[tokio::test]
async fn unknown_paths_are_not_label_values() {
    let m = Metrics::new().unwrap();
    call(&m, "/evil.Service/X1", Some("12"), "0").await;
    call(&m, "/braid.v1.RunService/NoSuchMethod", Some("12"), "0").await;
    let text = m.render();
    assert!(
        text.contains(r#"braid_grpc_requests_total{code="UNIMPLEMENTED",method="unknown",service="unknown"} 2"#),
        "{text}"
    );
    assert!(!text.contains("X1") && !text.contains("NoSuchMethod"), "{text}");
}

#[tokio::test]
async fn a_unary_call_dropped_before_its_trailers_is_cancelled() {
    let m = Metrics::new().unwrap();
    let svc = tower::service_fn(|_req: http::Request<()>| async move {
        Ok::<_, Infallible>(http::Response::new(Unary { step: 0, status: "0" }))
    });
    let svc = GrpcMetricsLayer::new(m.grpc().clone()).layer(svc);
    let req = http::Request::builder().uri("http://localhost/braid.v1.RunService/GetRun").body(()).unwrap();
    drop(svc.oneshot(req).await.unwrap());
    let series = r#"braid_grpc_requests_total{code="CANCELLED",method="GetRun",service="braid.v1.RunService"} 1"#;
    assert!(m.render().contains(series), "{series} missing from:\n{}", m.render());
}
