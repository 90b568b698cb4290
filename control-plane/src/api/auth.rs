//! The tower layer that authenticates every braid.v1 call (`authorization: Bearer …`), checks the token's role against the call, and hands the principal to the handlers.

use crate::domain::auth::{Permission, Principal};
use crate::domain::records::Tenant;
use crate::engine::{Engine, EngineError};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tower::{Layer, Service};

/// Whether calls need a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every braid.v1 call needs a valid token whose role grants it.
    Required,
    /// No checks: every call acts as an admin of the default tenant (`--insecure`).
    Off,
}

/// How a control plane checks callers: the mode, and whether `/metrics` needs a token too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub mode: AuthMode,
    /// `/metrics` answers only a bearer token that may read (else it is open, like `/healthz`).
    pub metrics_need_token: bool,
}

impl From<AuthMode> for Access {
    fn from(mode: AuthMode) -> Self {
        Self { mode, metrics_need_token: false }
    }
}

/// What a braid.v1 method needs; None for the services anyone may call (health, reflection).
/// A braid.v1 method missing from this table needs an admin token (fail closed).
pub fn permission(path: &str) -> Option<Permission> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if !service.starts_with("braid.") {
        return None;
    }
    use Permission::{Author, Destroy, Operate, Read, Work};
    Some(match (service, method) {
        ("braid.v1.WorkflowService", "PutWorkflow") => Author,
        ("braid.v1.WorkflowService", "ValidateWorkflow" | "GetWorkflow" | "ListWorkflows") => Read,
        ("braid.v1.RunService", "TriggerRun" | "TriggerRuns" | "CancelRun") => Operate,
        ("braid.v1.RunService", "GetRun" | "ListRuns" | "WatchRun") => Read,
        (
            "braid.v1.ScheduleService",
            "CreateSchedule" | "UpdateSchedule" | "PauseSchedule" | "ResumeSchedule" | "BackfillSchedule",
        ) => Operate,
        ("braid.v1.ScheduleService", "GetSchedule" | "ListSchedules") => Read,
        ("braid.v1.AdminService", "ListDeadLetters" | "ListWorkers" | "ListQueues") => Read,
        ("braid.v1.AdminService", "RedriveDeadLetters") => Operate,
        ("braid.v1.WorkerService", "Connect") => Work,
        _ => Destroy,
    })
}

/// The token of an `authorization: Bearer …` header.
pub fn bearer(headers: &http::HeaderMap) -> Result<&str, EngineError> {
    let missing = || EngineError::Unauthenticated("missing credentials: send `authorization: Bearer TOKEN`".into());
    let value = headers.get(http::header::AUTHORIZATION).ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| missing())?.trim();
    let (scheme, token) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    Ok(token.trim())
}

/// The principal the auth layer attached to a call.
pub fn principal_of<T>(req: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("no credentials were checked for this call"))
}

/// The tenant a call acts for: only ever the one its credential carries.
pub fn tenant_of<T>(req: &tonic::Request<T>) -> Result<Tenant, tonic::Status> {
    principal_of(req).map(|p| p.tenant)
}

/// Checks every call before the services see it.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    engine: Engine,
    mode: AuthMode,
}

impl AuthLayer {
    pub fn new(engine: Engine, mode: AuthMode) -> Self {
        Self { engine, mode }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, engine: self.engine.clone(), mode: self.mode }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    engine: Engine,
    mode: AuthMode,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let needs = permission(req.uri().path());
        if self.mode == AuthMode::Off {
            req.extensions_mut().insert(Principal::insecure());
            return Box::pin(inner.call(req));
        }
        let Some(needs) = needs else { return Box::pin(inner.call(req)) };
        let engine = self.engine.clone();
        // Read before the future: a request body need not be `Sync`, so it cannot be borrowed across awaits.
        let token = bearer(req.headers()).map(str::to_owned);
        Box::pin(async move {
            let checked = async {
                let principal = engine.authenticate(&token?).await?;
                Engine::authorize(&principal, needs)?;
                Ok::<_, EngineError>(principal)
            };
            match checked.await {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    inner.call(req).await
                }
                Err(e) => Ok(tonic::Status::from(e).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_braid_method_needs_a_permission_and_health_does_not() {
        assert_eq!(permission("/braid.v1.RunService/GetRun"), Some(Permission::Read));
        assert_eq!(permission("/braid.v1.RunService/TriggerRun"), Some(Permission::Operate));
        assert_eq!(permission("/braid.v1.AdminService/PurgeDeadLetters"), Some(Permission::Destroy));
        assert_eq!(permission("/braid.v1.WorkerService/Connect"), Some(Permission::Work));
        assert_eq!(permission("/braid.v1.RunService/SomethingNew"), Some(Permission::Destroy), "fail closed");
        assert_eq!(permission("/grpc.health.v1.Health/Check"), None);
        assert_eq!(permission("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), None);
    }

    #[test]
    fn the_bearer_scheme_is_required() {
        let mut h = http::HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(http::header::AUTHORIZATION, "bearer brd_x".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "brd_x");
    }
}
