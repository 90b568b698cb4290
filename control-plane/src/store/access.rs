//! Queries on tenants and API tokens: create, list, look a token up by its hash, revoke.

use super::entity::{api_token, tenant};
use super::{StoreError, corrupt};
use crate::domain::auth::Role;
use crate::domain::records::Tenant;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

/// A stored token (without its text, which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: Uuid,
    pub tenant: Tenant,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn record(m: api_token::Model) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: m.id,
        tenant: Tenant(m.tenant_id),
        name: m.name,
        role: m.role.parse().map_err(corrupt)?,
        created_at: m.created_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
    })
}

/// Creates tenant `name`; false if it exists.
pub async fn create_tenant<C: ConnectionTrait>(c: &C, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let row = tenant::ActiveModel {
        id: Set(name.to_owned()),
        tenant_id: Set(name.to_owned()),
        name: Set(name.to_owned()),
        created_at: Set(now),
    };
    let res = tenant::Entity::insert(row)
        .on_conflict(OnConflict::column(tenant::Column::Id).do_nothing().to_owned())
        .exec_without_returning(c)
        .await?;
    Ok(res == 1)
}

/// Whether tenant `name` exists.
pub async fn tenant_exists<C: ConnectionTrait>(c: &C, name: &str) -> Result<bool, StoreError> {
    Ok(tenant::Entity::find_by_id(name.to_owned()).one(c).await?.is_some())
}

/// Every tenant's name, sorted.
pub async fn tenants<C: ConnectionTrait>(c: &C) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    Ok(tenant::Entity::find()
        .order_by_asc(tenant::Column::Id)
        .all(c)
        .await?
        .into_iter()
        .map(|m| (m.id, m.created_at))
        .collect())
}

/// Stores a token by the hash of its text.
pub async fn insert_token<C: ConnectionTrait>(c: &C, t: &TokenRow, hash: &str) -> Result<(), StoreError> {
    let row = api_token::ActiveModel {
        id: Set(t.id),
        tenant_id: Set(t.tenant.as_str().to_owned()),
        name: Set(t.name.clone()),
        role: Set(t.role.as_str().to_owned()),
        token_hash: Set(hash.to_owned()),
        created_at: Set(t.created_at),
        expires_at: Set(t.expires_at),
        revoked_at: Set(None),
    };
    api_token::Entity::insert(row).exec_without_returning(c).await?;
    Ok(())
}

/// The token whose text hashes to `hash`, revoked or expired or not.
pub async fn token_by_hash<C: ConnectionTrait>(c: &C, hash: &str) -> Result<Option<TokenRow>, StoreError> {
    api_token::Entity::find().filter(api_token::Column::TokenHash.eq(hash)).one(c).await?.map(record).transpose()
}

/// Token `id`, if it exists.
pub async fn token<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<TokenRow>, StoreError> {
    api_token::Entity::find_by_id(id).one(c).await?.map(record).transpose()
}

/// Tokens (of `tenant`, or all), oldest first.
pub async fn tokens<C: ConnectionTrait>(c: &C, tenant: Option<&Tenant>) -> Result<Vec<TokenRow>, StoreError> {
    let mut q = api_token::Entity::find();
    if let Some(t) = tenant {
        q = q.filter(api_token::Column::TenantId.eq(t.as_str()));
    }
    q.order_by_asc(api_token::Column::Id).all(c).await?.into_iter().map(record).collect()
}

/// Marks token `id` revoked (keeps the first revocation time); false if there is no such token.
pub async fn revoke_token<C: ConnectionTrait>(c: &C, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    if token(c, id).await?.is_none() {
        return Ok(false);
    }
    api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, sea_orm::sea_query::Expr::value(now))
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(c)
        .await?;
    Ok(true)
}
