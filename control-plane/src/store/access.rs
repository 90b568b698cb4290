//! Queries on tenants and API tokens (create, list, look a token up by its hash, revoke) and on tenant quotas (overrides, what is in use).

use super::entity::{api_token, run, schedule, tenant};
use super::{StoreError, corrupt};
use crate::domain::auth::Role;
use crate::domain::quota::QuotaOverrides;
use crate::domain::records::Tenant;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
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
        ..Default::default()
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
        .col_expr(api_token::Column::RevokedAt, Expr::value(now))
        .filter(api_token::Column::Id.eq(id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(c)
        .await?;
    Ok(true)
}

/// A tenant's quota overrides (all None for an unknown tenant).
pub async fn quota_overrides<C: ConnectionTrait>(c: &C, tenant: &Tenant) -> Result<QuotaOverrides, StoreError> {
    let Some(m) = tenant::Entity::find_by_id(tenant.as_str().to_owned()).one(c).await? else {
        return Ok(QuotaOverrides::default());
    };
    let n = |v: Option<i32>| v.map(|v| u32::try_from(v).map_err(corrupt)).transpose();
    Ok(QuotaOverrides {
        triggers_per_second: n(m.quota_triggers_per_second)?,
        trigger_burst: n(m.quota_trigger_burst)?,
        concurrent_runs: n(m.quota_concurrent_runs)?,
        workers: n(m.quota_workers)?,
        schedules: n(m.quota_schedules)?,
    })
}

/// Replaces a tenant's quota overrides (None restores the default); false if there is no such tenant.
pub async fn set_quota_overrides<C: ConnectionTrait>(
    c: &C,
    tenant: &str,
    o: QuotaOverrides,
) -> Result<bool, StoreError> {
    let v = |x: Option<u32>| x.map(|x| i32::try_from(x).unwrap_or(i32::MAX));
    let res = tenant::Entity::update_many()
        .col_expr(tenant::Column::QuotaTriggersPerSecond, Expr::value(v(o.triggers_per_second)))
        .col_expr(tenant::Column::QuotaTriggerBurst, Expr::value(v(o.trigger_burst)))
        .col_expr(tenant::Column::QuotaConcurrentRuns, Expr::value(v(o.concurrent_runs)))
        .col_expr(tenant::Column::QuotaWorkers, Expr::value(v(o.workers)))
        .col_expr(tenant::Column::QuotaSchedules, Expr::value(v(o.schedules)))
        .filter(tenant::Column::Id.eq(tenant))
        .exec(c)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Runs of `tenant` not finished (queued or running), over the partial index `idx_runs_open`.
pub async fn open_runs<C: ConnectionTrait>(c: &C, tenant: &Tenant) -> Result<u64, StoreError> {
    Ok(run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.as_str()))
        .filter(run::Column::FinishedAt.is_null())
        .count(c)
        .await?)
}

/// Schedules of `tenant`.
pub async fn schedule_count<C: ConnectionTrait>(c: &C, tenant: &Tenant) -> Result<u64, StoreError> {
    Ok(schedule::Entity::find().filter(schedule::Column::TenantId.eq(tenant.as_str())).count(c).await?)
}
