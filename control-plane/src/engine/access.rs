//! Access: turning a bearer token into a principal (tenant and role), checking permissions, and the operator's tenant and token management.

use super::{Engine, EngineError};
use crate::domain::auth::{self, Permission, Principal, Role};
use crate::domain::records::Tenant;
use crate::store::access::{self, TokenRow};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a checked credential is trusted before it is read again: the most a revocation
/// takes to reach new calls (open worker streams re-check at this period too).
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(1);
/// Most credentials kept; the cache is emptied when it fills (then refilled by use).
const CACHE_LIMIT: usize = 10_000;

/// A token as last read (None: no such token) and when it was read.
type Checked = (Option<TokenRow>, Instant);

/// Token hash → the token as last read.
#[derive(Debug, Clone, Default)]
pub struct CredentialCache(Arc<Mutex<HashMap<String, Checked>>>);

/// What `create_token` made: the stored token and its text (shown once, never stored).
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: TokenRow,
    pub text: String,
}

/// Tenant names: like workflow names, lowercase letters, digits, `-` and `_`, 1–63 characters.
fn check_tenant_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid(
            "tenant",
            format!("{name:?} is not a tenant name (1-63 of a-z, 0-9, '-', '_', starting with a letter or digit)"),
        ))
    }
}

/// Why a stored token does not authenticate at `now`, if it does not.
fn refusal(t: &TokenRow, now: DateTime<Utc>) -> Option<&'static str> {
    if t.revoked_at.is_some() {
        Some("the token was revoked")
    } else if t.expires_at.is_some_and(|e| e <= now) {
        Some("the token has expired")
    } else {
        None
    }
}

impl Engine {
    /// The principal a bearer token acts as. Unknown, malformed, expired and revoked tokens are
    /// `Unauthenticated` (the message does not say which of unknown and malformed).
    pub async fn authenticate(&self, text: &str) -> Result<Principal, EngineError> {
        let unknown = || EngineError::Unauthenticated("invalid API token".into());
        if !auth::looks_like_token(text) {
            return Err(unknown());
        }
        let hash = auth::token_hash(text);
        let token = self.token_by_hash(&hash).await?.ok_or_else(unknown)?;
        if let Some(why) = refusal(&token, self.now()) {
            return Err(EngineError::Unauthenticated(why.into()));
        }
        Ok(Principal { tenant: token.tenant, role: token.role, token_id: Some(token.id) })
    }

    /// The stored token for `hash`, read at most once per [`CREDENTIAL_TTL`].
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, EngineError> {
        {
            let cache = self.credentials.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((t, at)) = cache.get(hash)
                && at.elapsed() < CREDENTIAL_TTL
            {
                return Ok(t.clone());
            }
        }
        let token = access::token_by_hash(self.store.conn(), hash).await?;
        let mut cache = self.credentials.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(hash.to_owned(), (token.clone(), Instant::now()));
        Ok(token)
    }

    /// Whether `principal` may still act: its token (if any) exists, is not revoked and has not
    /// expired. Read from the database (open streams ask this every [`CREDENTIAL_TTL`]).
    pub async fn still_authorized(&self, principal: &Principal) -> Result<Result<(), String>, EngineError> {
        let Some(id) = principal.token_id else { return Ok(Ok(())) };
        Ok(match access::token(self.store.conn(), id).await? {
            None => Err("the token was deleted".into()),
            Some(t) => refusal(&t, self.now()).map_or(Ok(()), |why| Err(why.into())),
        })
    }

    /// Refuses a call its principal's role does not grant.
    pub fn authorize(principal: &Principal, needs: Permission) -> Result<(), EngineError> {
        if principal.role.allows(needs) {
            Ok(())
        } else {
            Err(EngineError::PermissionDenied(format!(
                "a {} token may not {needs} (tenant {:?})",
                principal.role,
                principal.tenant.as_str()
            )))
        }
    }

    /// Creates a tenant; `AlreadyExists` if it does.
    pub async fn create_tenant(&self, name: &str) -> Result<(), EngineError> {
        check_tenant_name(name)?;
        if access::create_tenant(self.store.conn(), name, self.now()).await? {
            Ok(())
        } else {
            Err(EngineError::AlreadyExists(format!("tenant {name:?} already exists")))
        }
    }

    /// Every tenant with its creation time.
    pub async fn list_tenants(&self) -> Result<Vec<(String, DateTime<Utc>)>, EngineError> {
        Ok(access::tenants(self.store.conn()).await?)
    }

    /// Makes a token for an existing tenant. Its text is in the answer and nowhere else.
    pub async fn create_token(
        &self,
        tenant: &str,
        role: Role,
        name: &str,
        expires_in: Option<Duration>,
    ) -> Result<NewToken, EngineError> {
        check_tenant_name(tenant)?;
        if !access::tenant_exists(self.store.conn(), tenant).await? {
            return Err(EngineError::NotFound(format!("tenant {tenant:?} not found (create it first)")));
        }
        let now = self.now();
        let expires_at = expires_in
            .map(|d| chrono::Duration::from_std(d).map(|d| now + d))
            .transpose()
            .map_err(|_| EngineError::invalid("expires_in", "too long"))?;
        let token = TokenRow {
            id: Uuid::now_v7(),
            tenant: Tenant(tenant.to_owned()),
            name: if name.is_empty() { format!("{role} token") } else { name.to_owned() },
            role,
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        let text = auth::new_token_text();
        access::insert_token(self.store.conn(), &token, &auth::token_hash(&text)).await?;
        Ok(NewToken { token, text })
    }

    /// Tokens of `tenant` (or every tenant), oldest first.
    pub async fn list_tokens(&self, tenant: Option<&Tenant>) -> Result<Vec<TokenRow>, EngineError> {
        Ok(access::tokens(self.store.conn(), tenant).await?)
    }

    /// Revokes token `id`: new calls with it fail within [`CREDENTIAL_TTL`], open streams close.
    pub async fn revoke_token(&self, id: Uuid) -> Result<TokenRow, EngineError> {
        if !access::revoke_token(self.store.conn(), id, self.now()).await? {
            return Err(EngineError::NotFound(format!("token {id} not found")));
        }
        access::token(self.store.conn(), id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("token {id} not found")))
    }
}
