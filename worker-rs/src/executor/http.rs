//! `HttpExecutor`: POSTs the task document to a URL; a 2xx JSON body is the output, the status says whether a failure is retryable.

use super::outcome::{attempt_fields, parse_output, request_document, snippet, timed_out, too_large, trace_fields};
use super::{DEFAULT_MAX_OUTPUT_BYTES, Executor, ExecutorError, cancelled_error};
use crate::{TaskContext, TaskError};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};
use serde_json::{Value, json};
use std::fmt;
use std::time::Duration;

/// The per-request timeout when none is set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error response's body is kept in the error.
const ERROR_BODY_BYTES: usize = 2048;

/// Serves a task type by POSTing `{"input": …, "deps": {…}}` to a URL.
///
/// The request carries `Content-Type: application/json`, the attempt's facts as `Braid-Task-Id`,
/// `Braid-Run-Id`, `Braid-Workflow`, `Braid-Task-Name`, `Braid-Task-Type`, `Braid-Attempt`,
/// `Braid-Max-Attempts` and `Braid-Deadline` (RFC 3339, when the task has one), the run's
/// `traceparent`/`tracestate`, and the configured headers.
///
/// | answer | result |
/// | --- | --- |
/// | 2xx with a JSON body | the body is the output |
/// | 2xx whose body is not JSON | not retryable, `bad_output` |
/// | 408, 429, 5xx | retryable, `http_status` |
/// | any other status (3xx: redirects are not followed; 4xx) | not retryable, `http_status` |
/// | connection refused or reset, DNS failure | retryable, `http_connect` / `http` |
/// | no complete answer within the timeout | retryable, `timeout` |
/// | body larger than the output bound | not retryable, `output_too_large` |
///
/// Cancellation (and the executor's timeout) drops the request: its connection is closed.
#[derive(Clone)]
pub struct HttpExecutor {
    client: Client,
    url: Url,
    /// The URL without credentials or query, for messages.
    shown: String,
    headers: HeaderMap,
    timeout: Duration,
    max_output_bytes: usize,
}

impl fmt::Debug for HttpExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be secrets: only their names are shown.
        let headers: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("HttpExecutor")
            .field("url", &self.shown)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("max_output_bytes", &self.max_output_bytes)
            .finish_non_exhaustive()
    }
}

/// Settings of an [`HttpExecutor`]; checked by [`HttpExecutorBuilder::build`].
#[derive(Clone)]
pub struct HttpExecutorBuilder {
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    ca_cert: Option<Vec<u8>>,
    max_output_bytes: usize,
}

impl fmt::Debug for HttpExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpExecutorBuilder")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpExecutor {
    /// Starts the settings of an executor that POSTs to `url` (`http://` or `https://`).
    pub fn builder(url: impl Into<String>) -> HttpExecutorBuilder {
        HttpExecutorBuilder {
            url: url.into(),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            ca_cert: None,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }

    /// The URL requests go to, without credentials or query.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The whole exchange: request, status, bounded body.
    async fn exchange(&self, input: &Value, ctx: &TaskContext) -> Result<Value, TaskError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        for (name, value) in attempt_fields(ctx) {
            request = request.header(format!("braid-{name}"), value);
        }
        for (name, value) in trace_fields(ctx) {
            request = request.header(name, value);
        }
        let mut response = request.body(request_document(input, ctx)).send().await.map_err(|e| self.failed(&e))?;
        let status = response.status();
        if status.is_success() {
            let body = match read_body(&mut response, self.max_output_bytes).await.map_err(|e| self.failed(&e))? {
                Body::Complete(body) => body,
                Body::Cut(_) => return Err(too_large("the response body", self.max_output_bytes)),
            };
            return parse_output(&body, &format!("the response body (HTTP {status}) of {}", self.shown));
        }
        // The start of the body explains the failure; a body that cannot be read explains nothing.
        let body = match read_body(&mut response, ERROR_BODY_BYTES).await {
            Ok(Body::Complete(body) | Body::Cut(body)) => body,
            Err(_) => Vec::new(),
        };
        Err(status_error(&self.shown, status, &body))
    }

    /// A request that got no answer: retryable, except when it could not even be built.
    fn failed(&self, error: &reqwest::Error) -> TaskError {
        let mut message = format!("POST {}: {error}", self.shown);
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if error.is_builder() {
            TaskError::fatal(message).with_type("http_request")
        } else if error.is_timeout() {
            TaskError::retryable(message).with_type("timeout")
        } else if error.is_connect() {
            TaskError::retryable(message).with_type("http_connect")
        } else {
            TaskError::retryable(message).with_type("http")
        }
    }
}

impl Executor for HttpExecutor {
    async fn execute(&self, input: Value, ctx: TaskContext) -> Result<Value, TaskError> {
        let exchange = tokio::time::timeout(self.timeout, self.exchange(&input, &ctx));
        tokio::select! {
            biased;
            () = ctx.cancelled() => Err(cancelled_error(&ctx)),
            done = exchange => done.unwrap_or_else(|_| Err(timed_out(&format!("POST {}", self.shown), self.timeout))),
        }
    }
}

impl HttpExecutorBuilder {
    /// Adds a header sent with every request (e.g. `Authorization`); its value is kept out of
    /// logs and `Debug`.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long one request may take, from connecting to the end of the body (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// PEM CA certificate(s) trusted for `https://`, in addition to the built-in web roots.
    #[must_use]
    pub fn tls_ca_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_cert = Some(pem.into());
        self
    }

    /// The most bytes of a response body read (default [`DEFAULT_MAX_OUTPUT_BYTES`]).
    #[must_use]
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// Checks the settings and makes the client; nothing connects until a task runs.
    pub fn build(self) -> Result<HttpExecutor, ExecutorError> {
        let bad_url = |reason: String| ExecutorError::InvalidUrl { url: self.url.clone(), reason };
        let url = Url::parse(&self.url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_url("the scheme must be http or https".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(ExecutorError::Zero("timeout"));
        }
        if self.max_output_bytes == 0 {
            return Err(ExecutorError::Zero("max_output_bytes"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let bad = |reason: String| ExecutorError::InvalidHeader { name: name.clone(), reason };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| bad("the value has characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        // reqwest is built without a bundled crypto provider: use ring, like the gRPC channel.
        // An error only says a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut client = Client::builder().redirect(reqwest::redirect::Policy::none()).tls_backend_rustls();
        if let Some(pem) = &self.ca_cert {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ExecutorError::InvalidCaCert(e.to_string()))?;
            if certs.is_empty() {
                return Err(ExecutorError::InvalidCaCert(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
                ));
            }
            for cert in certs {
                client = client.add_root_certificate(cert);
            }
        }
        let client = client.build().map_err(|e| ExecutorError::Client(e.to_string()))?;
        let mut shown = url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        // Only fails for URLs that cannot have credentials, which then have none.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        Ok(HttpExecutor {
            client,
            url,
            shown: shown.to_string(),
            headers,
            timeout: self.timeout,
            max_output_bytes: self.max_output_bytes,
        })
    }
}

/// Whether a non-2xx status may succeed if tried again: 408, 429 and 5xx.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429) || status.is_server_error()
}

fn status_error(url: &str, status: StatusCode, body: &[u8]) -> TaskError {
    let text = snippet(body, ERROR_BODY_BYTES);
    let mut message = format!("POST {url} answered HTTP {status}");
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(&text);
    }
    let error = if is_retryable_status(status) { TaskError::retryable(message) } else { TaskError::fatal(message) };
    error.with_type("http_status").with_details(json!({"status": status.as_u16(), "body": text}))
}

/// A body read up to a bound.
enum Body {
    Complete(Vec<u8>),
    /// The first `limit` bytes of a longer body.
    Cut(Vec<u8>),
}

async fn read_body(response: &mut Response, limit: usize) -> Result<Body, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            body.extend_from_slice(&chunk[..limit - body.len()]);
            return Ok(Body::Cut(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body::Complete(body))
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
