//! `HttpExecutor` against a local axum server (and a raw TCP one for cancellation).

use super::*;
use crate::CancelReason;
use crate::executor::test_support::{context, within};
use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap as AxumHeaders;
use axum::routing::post;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Serves the test routes on 127.0.0.1:0; returns `http://ADDR`.
async fn server() -> String {
    let app = Router::new()
        .route(
            "/echo",
            post(|headers: AxumHeaders, body: String| async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let seen: serde_json::Map<String, Value> = [
                    "braid-task-id",
                    "braid-attempt",
                    "braid-max-attempts",
                    "braid-task-type",
                    "braid-deadline",
                    "traceparent",
                    "authorization",
                    "content-type",
                ]
                .into_iter()
                .map(|name| (name.to_owned(), Value::String(header(name))))
                .collect();
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                axum::Json(json!({"received": body, "headers": seen}))
            }),
        )
        .route(
            "/status/{code}",
            post(|Path(code): Path<u16>| async move {
                (StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT), format!("went wrong with {code}"))
            }),
        )
        .route("/text", post(|| async { "<html>not json</html>" }))
        .route("/big", post(|| async { format!("\"{}\"", "x".repeat(4096)) }))
        .route("/hang", post(std::future::pending::<String>));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn executor(url: String) -> HttpExecutor {
    HttpExecutor::builder(url).header("Authorization", "Bearer s3cret").build().expect("builds")
}

#[tokio::test]
async fn a_json_answer_is_the_output_and_the_request_carries_the_task() {
    let base = server().await;
    let (ctx, _) = context(json!({"fetch": {"url": "u"}}));
    let out = executor(format!("{base}/echo")).execute(json!({"w": 64}), ctx).await.expect("succeeds");
    assert_eq!(out["received"], json!({"input": {"w": 64}, "deps": {"fetch": {"url": "u"}}}));
    let h = &out["headers"];
    assert_eq!((h["braid-task-id"].as_str(), h["braid-attempt"].as_str()), (Some("t-1"), Some("2")));
    assert_eq!((h["braid-max-attempts"].as_str(), h["braid-task-type"].as_str()), (Some("3"), Some("thumb")));
    assert!(h["braid-deadline"].as_str().is_some_and(|d| d.ends_with('Z')), "{h}");
    assert!(h["traceparent"].as_str().is_some_and(|t| t.starts_with("00-0af7")), "{h}");
    assert_eq!(h["authorization"], "Bearer s3cret");
    assert_eq!(h["content-type"], "application/json");
}

#[tokio::test]
async fn statuses_map_to_retryable_or_not() {
    let base = server().await;
    for (code, retryable) in
        [(500, true), (503, true), (429, true), (408, true), (400, false), (422, false), (404, false)]
    {
        let (ctx, _) = context(Value::Null);
        let e = executor(format!("{base}/status/{code}")).execute(Value::Null, ctx).await.expect_err("fails");
        assert_eq!((e.error_type(), e.is_retryable()), ("http_status", retryable), "{code}: {e}");
        assert!(e.message().contains(&format!("went wrong with {code}")), "{e}");
        assert_eq!(e.details().map(|d| d["status"].clone()), Some(json!(code)));
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_or_too_large_is_not_retried() {
    let base = server().await;
    let (ctx, _) = context(Value::Null);
    let e = executor(format!("{base}/text")).execute(Value::Null, ctx).await.expect_err("not JSON");
    assert_eq!((e.error_type(), e.is_retryable()), ("bad_output", false));
    assert!(e.message().contains("response body (HTTP 200 OK)") && e.message().contains("<html>not json"), "{e}");
    let (ctx, _) = context(Value::Null);
    let small = HttpExecutor::builder(format!("{base}/big")).max_output_bytes(1024).build().expect("builds");
    let e = small.execute(Value::Null, ctx).await.expect_err("too large");
    assert_eq!((e.error_type(), e.is_retryable()), ("output_too_large", false));
}

#[tokio::test]
async fn a_timeout_or_a_refused_connection_is_retryable() {
    let base = server().await;
    let (ctx, _) = context(Value::Null);
    let slow = HttpExecutor::builder(format!("{base}/hang")).timeout(Duration::from_millis(200)).build().expect("ok");
    let e = within("the timeout", slow.execute(Value::Null, ctx)).await.expect_err("times out");
    assert_eq!((e.error_type(), e.is_retryable()), ("timeout", true), "{e}");

    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let (ctx, _) = context(Value::Null);
    let e = executor(format!("http://{addr}/x")).execute(Value::Null, ctx).await.expect_err("refused");
    assert_eq!((e.error_type(), e.is_retryable()), ("http_connect", true), "{e}");
}

#[tokio::test]
async fn cancellation_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (ctx, signal) = context(Value::Null);
    let exec = executor(format!("http://{addr}/slow"));
    let call = tokio::spawn(async move { exec.execute(json!({"a": 1}), ctx).await });
    let (mut conn, _) = within("the request's connection", listener.accept()).await.expect("accept");
    // The request arrives; the server never answers.
    let mut buf = vec![0; 64 * 1024];
    let n = within("the request", conn.read(&mut buf)).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("POST /slow HTTP/1.1"));
    signal.cancel(CancelReason::Server("run cancelled".to_owned()));
    let e = within("the executor to return", call).await.expect("joins").expect_err("cancelled");
    assert_eq!((e.error_type(), e.is_retryable()), ("cancelled", true), "{e}");
    assert!(e.message().contains("run cancelled"), "{e}");
    // The client closed the connection: the server reads its end.
    loop {
        match within("the connection to close", conn.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[test]
fn settings_are_checked() {
    for (url, why) in [("not a url", "relative URL"), ("ftp://x/y", "http or https")] {
        let e = HttpExecutor::builder(url).build().expect_err(url);
        assert!(e.to_string().contains(why), "{e}");
    }
    let e = HttpExecutor::builder("http://x").header("bad name", "v").build().expect_err("header");
    assert!(matches!(e, ExecutorError::InvalidHeader { name, .. } if name == "bad name"));
    let e = HttpExecutor::builder("http://x").header("X-Key", "line\nbreak").build().expect_err("value");
    assert!(!e.to_string().contains("break"), "the value stays out of the message: {e}");
    let e = HttpExecutor::builder("http://x").timeout(Duration::ZERO).build().expect_err("zero");
    assert!(matches!(e, ExecutorError::Zero("timeout")));
    let e = HttpExecutor::builder("https://x").tls_ca_cert("not pem").build().expect_err("ca");
    assert!(matches!(e, ExecutorError::InvalidCaCert(_)), "{e}");
    let ok = HttpExecutor::builder("https://user:pw@example.invalid/p?key=k").header("A", "b").build().expect("ok");
    assert_eq!(ok.url(), "https://example.invalid/p");
    assert!(!format!("{ok:?}").contains("pw") && !format!("{ok:?}").contains("\"b\""), "{ok:?}");
}
