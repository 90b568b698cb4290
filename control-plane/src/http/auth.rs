//! Auth on the HTTP port: the API and the feeds take the same tokens as gRPC (a bearer header, or the dashboard's cookie set by signing in), and a token's role limits what it may do.

use super::error::HttpError;
use crate::api::auth::{AuthMode, bearer};
use crate::domain::auth::{Permission, Principal};
use crate::engine::{Engine, EngineError};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

/// The cookie the dashboard keeps its token in (HttpOnly, Secure, SameSite=Strict).
pub const COOKIE: &str = "braid_token";

/// What the auth middleware needs.
#[derive(Debug, Clone)]
pub struct HttpAuth {
    pub engine: Engine,
    pub mode: AuthMode,
}

/// The token of a request: `authorization: Bearer …`, else the dashboard's cookie.
fn token_of(headers: &HeaderMap) -> Result<String, EngineError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return bearer(headers).map(str::to_owned);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
        .ok_or_else(|| EngineError::Unauthenticated("sign in: send `authorization: Bearer TOKEN`".into()))
}

/// Who a request acts as (any role), or why it cannot act.
async fn principal(auth: &HttpAuth, headers: &HeaderMap) -> Result<Principal, EngineError> {
    match auth.mode {
        AuthMode::Off => Ok(Principal::insecure()),
        AuthMode::Required => auth.engine.authenticate(&token_of(headers)?).await,
    }
}

/// Middleware of the API and feed routes: authenticates, checks the role (reads need `Read`,
/// every POST needs `Operate`), and hands the principal to the handler as an extension.
pub async fn require(State(auth): State<HttpAuth>, mut req: Request, next: Next) -> Response {
    let needs = if req.method() == Method::GET || req.method() == Method::HEAD {
        Permission::Read
    } else {
        Permission::Operate
    };
    let headers = req.headers().clone();
    let checked = async {
        let p = principal(&auth, &headers).await?;
        Engine::authorize(&p, needs)?;
        Ok::<_, EngineError>(p)
    };
    match checked.await {
        Ok(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => HttpError::from(e).into_response(),
    }
}

/// `/api/v1/session`: sign in (POST a token: it is checked and kept in a cookie), who am I (GET),
/// sign out (DELETE). Reachable without a token.
pub fn routes(auth: HttpAuth) -> Router {
    Router::new().route("/api/v1/session", get(whoami).post(sign_in).delete(sign_out)).with_state(auth)
}

fn describe(auth: &HttpAuth, p: &Principal) -> serde_json::Value {
    let mode = match auth.mode {
        AuthMode::Required => "on",
        AuthMode::Off => "off",
    };
    json!({"auth": mode, "tenant": p.tenant.as_str(), "role": p.role.as_str()})
}

async fn whoami(State(auth): State<HttpAuth>, headers: HeaderMap) -> Result<Json<serde_json::Value>, HttpError> {
    let p = principal(&auth, &headers).await?;
    Ok(Json(describe(&auth, &p)))
}

#[derive(Debug, Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(auth): State<HttpAuth>, Json(body): Json<SignIn>) -> Result<Response, HttpError> {
    let p = match auth.mode {
        AuthMode::Off => Principal::insecure(),
        AuthMode::Required => auth.engine.authenticate(body.token.trim()).await?,
    };
    Engine::authorize(&p, Permission::Read)?;
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict", body.token.trim());
    let cookie = HeaderValue::from_str(&cookie).map_err(|_| HttpError::bad("token", "not a valid token"))?;
    Ok(([(header::SET_COOKIE, cookie)], Json(describe(&auth, &p))).into_response())
}

async fn sign_out() -> Response {
    let gone = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, HeaderValue::from_str(&gone).unwrap_or(HeaderValue::from_static("")))], Json(json!({})))
        .into_response()
}
