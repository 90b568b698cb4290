//! Queries on connected workers: registration, heartbeats, disconnection, listing.

use super::dbtime::DbNow;
use super::entity::worker;
use super::{StoreError, corrupt};
use crate::domain::records::Tenant;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// A worker as registered from its Hello.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub id: Uuid,
    pub name: String,
    pub task_types: Vec<String>,
    pub slots: u32,
    pub labels: BTreeMap<String, String>,
    pub sdk_language: String,
    pub sdk_version: String,
    pub control_plane: String,
    pub draining: bool,
    pub connected_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
}

pub async fn insert<C: ConnectionTrait>(c: &C, tenant: &Tenant, w: &WorkerRow) -> Result<(), StoreError> {
    let row = worker::ActiveModel {
        id: Set(w.id),
        tenant_id: Set(tenant.0.clone()),
        name: Set(w.name.clone()),
        task_types: Set(serde_json::to_string(&w.task_types).map_err(corrupt)?),
        slots: Set(i32::try_from(w.slots).map_err(corrupt)?),
        labels: Set(serde_json::to_string(&w.labels).map_err(corrupt)?),
        sdk_language: Set(w.sdk_language.clone()),
        sdk_version: Set(w.sdk_version.clone()),
        control_plane: Set(w.control_plane.clone()),
        draining: Set(w.draining),
        connected_at: Set(w.connected_at),
        last_heartbeat_at: Set(w.last_heartbeat_at),
        disconnected_at: Set(None),
    };
    worker::Entity::insert(row).exec_without_returning(c).await?;
    Ok(())
}

/// Records a heartbeat (and the draining flag) of a connected worker.
pub async fn touch<C: ConnectionTrait>(c: &C, id: Uuid, draining: bool, now: DbNow) -> Result<(), StoreError> {
    worker::Entity::update_many()
        .col_expr(worker::Column::LastHeartbeatAt, now.now())
        .col_expr(worker::Column::Draining, Expr::value(draining))
        .filter(worker::Column::Id.eq(id))
        .exec(c)
        .await?;
    Ok(())
}

pub async fn disconnect<C: ConnectionTrait>(c: &C, id: Uuid, now: DbNow) -> Result<(), StoreError> {
    worker::Entity::update_many()
        .col_expr(worker::Column::DisconnectedAt, now.now())
        .filter(worker::Column::Id.eq(id))
        .exec(c)
        .await?;
    Ok(())
}

/// Workers of `tenant` connected and heard from within `fresh`.
fn connected_query(tenant: &Tenant, fresh: Duration, now: DbNow) -> sea_orm::Select<worker::Entity> {
    worker::Entity::find()
        .filter(worker::Column::TenantId.eq(tenant.as_str()))
        .filter(worker::Column::DisconnectedAt.is_null())
        .filter(Expr::col(worker::Column::LastHeartbeatAt).gte(now.minus(fresh)))
}

/// How many workers of `tenant` are connected and were heard from within `fresh` (all of them:
/// `connected` lists at most a page).
pub async fn count_connected<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    fresh: Duration,
    now: DbNow,
) -> Result<u64, StoreError> {
    Ok(sea_orm::PaginatorTrait::count(connected_query(tenant, fresh, now), c).await?)
}

/// Workers connected and heard from within `fresh`, oldest connection first.
pub async fn connected<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    fresh: Duration,
    limit: u64,
    now: DbNow,
) -> Result<Vec<WorkerRow>, StoreError> {
    let rows =
        connected_query(tenant, fresh, now).order_by_asc(worker::Column::ConnectedAt).limit(limit).all(c).await?;
    rows.into_iter()
        .map(|m| {
            Ok(WorkerRow {
                id: m.id,
                name: m.name,
                task_types: serde_json::from_str(&m.task_types).map_err(corrupt)?,
                slots: u32::try_from(m.slots).map_err(corrupt)?,
                labels: serde_json::from_str(&m.labels).map_err(corrupt)?,
                sdk_language: m.sdk_language,
                sdk_version: m.sdk_version,
                control_plane: m.control_plane,
                draining: m.draining,
                connected_at: m.connected_at,
                last_heartbeat_at: m.last_heartbeat_at,
            })
        })
        .collect()
}

/// The names of the workers among `ids` (connected or not), by id.
pub async fn names<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, StoreError> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let rows: Vec<(Uuid, String)> = worker::Entity::find()
        .select_only()
        .column(worker::Column::Id)
        .column(worker::Column::Name)
        .filter(worker::Column::TenantId.eq(tenant.as_str()))
        .filter(worker::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(c)
        .await?;
    Ok(rows.into_iter().collect())
}
