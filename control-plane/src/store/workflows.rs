//! Queries on workflows and their immutable versions.

use super::entity::{workflow, workflow_version};
use super::{StoreError, corrupt};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::records::{Tenant, WorkflowSummary, WorkflowVersion};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

/// A version about to be stored.
#[derive(Debug)]
pub struct NewVersion<'a> {
    pub name: &'a str,
    pub version: u32,
    pub description: &'a str,
    pub content_hash: &'a str,
    pub canonical_json: &'a str,
    pub task_count: u32,
    pub now: DateTime<Utc>,
}

fn to_record(m: workflow_version::Model) -> Result<WorkflowVersion, StoreError> {
    let definition: WorkflowDefinition = serde_json::from_str(&m.definition)
        .map_err(|e| corrupt(format!("workflow {} v{}: {e}", m.workflow_name, m.version)))?;
    Ok(WorkflowVersion {
        name: m.workflow_name,
        version: u32::try_from(m.version).map_err(corrupt)?,
        definition,
        content_hash: m.content_hash,
        created_at: m.created_at,
    })
}

/// The newest version of `name`, if any.
pub async fn latest<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    name: &str,
) -> Result<Option<WorkflowVersion>, StoreError> {
    workflow_version::Entity::find()
        .filter(workflow_version::Column::TenantId.eq(tenant.as_str()))
        .filter(workflow_version::Column::WorkflowName.eq(name))
        .order_by_desc(workflow_version::Column::Version)
        .one(c)
        .await?
        .map(to_record)
        .transpose()
}

/// Version `version` of `name`, if it exists.
pub async fn get<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    name: &str,
    version: u32,
) -> Result<Option<WorkflowVersion>, StoreError> {
    workflow_version::Entity::find()
        .filter(workflow_version::Column::TenantId.eq(tenant.as_str()))
        .filter(workflow_version::Column::WorkflowName.eq(name))
        .filter(workflow_version::Column::Version.eq(i64::from(version)))
        .one(c)
        .await?
        .map(to_record)
        .transpose()
}

/// Stores a new version and moves the workflow's latest pointer to it.
/// Fails with [`StoreError::Conflict`] when another writer stored that version first.
pub async fn insert<C: ConnectionTrait>(c: &C, tenant: &Tenant, v: &NewVersion<'_>) -> Result<(), StoreError> {
    let version = i32::try_from(v.version).map_err(corrupt)?;
    workflow_version::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0.clone()),
        workflow_name: Set(v.name.to_owned()),
        version: Set(version),
        content_hash: Set(v.content_hash.to_owned()),
        definition: Set(v.canonical_json.to_owned()),
        created_at: Set(v.now),
    }
    .insert(c)
    .await?;
    if v.version == 1 {
        workflow::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.0.clone()),
            name: Set(v.name.to_owned()),
            latest_version: Set(version),
            description: Set(v.description.to_owned()),
            created_at: Set(v.now),
            updated_at: Set(v.now),
        }
        .insert(c)
        .await?;
        return Ok(());
    }
    let moved = workflow::Entity::update_many()
        .col_expr(workflow::Column::LatestVersion, sea_orm::sea_query::Expr::value(version))
        .col_expr(workflow::Column::Description, sea_orm::sea_query::Expr::value(v.description.to_owned()))
        .col_expr(workflow::Column::UpdatedAt, sea_orm::sea_query::Expr::value(v.now))
        .filter(workflow::Column::TenantId.eq(tenant.as_str()))
        .filter(workflow::Column::Name.eq(v.name))
        .filter(workflow::Column::LatestVersion.eq(version - 1))
        .exec(c)
        .await?;
    if moved.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("workflow {} moved past version {}", v.name, version - 1)))
    }
}

/// Workflows by name, after `after` (exclusive), at most `limit`.
pub async fn list<C: ConnectionTrait>(
    c: &C,
    tenant: &Tenant,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<WorkflowSummary>, StoreError> {
    let mut q = workflow::Entity::find().filter(workflow::Column::TenantId.eq(tenant.as_str()));
    if let Some(after) = after {
        q = q.filter(workflow::Column::Name.gt(after));
    }
    let rows = q.order_by_asc(workflow::Column::Name).limit(limit).all(c).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // The latest version of every listed workflow, in one query.
    let latest = rows.iter().fold(Condition::any(), |cond, w| {
        cond.add(
            Condition::all()
                .add(workflow_version::Column::WorkflowName.eq(w.name.as_str()))
                .add(workflow_version::Column::Version.eq(w.latest_version)),
        )
    });
    let versions = workflow_version::Entity::find()
        .filter(workflow_version::Column::TenantId.eq(tenant.as_str()))
        .filter(latest)
        .all(c)
        .await?;
    let mut task_counts = std::collections::HashMap::with_capacity(versions.len());
    for v in versions {
        let record = to_record(v)?;
        task_counts.insert(record.name, u32::try_from(record.definition.tasks.len()).unwrap_or(u32::MAX));
    }
    rows.into_iter()
        .map(|w| {
            let task_count = *task_counts
                .get(&w.name)
                .ok_or_else(|| corrupt(format!("workflow {} has no version {}", w.name, w.latest_version)))?;
            Ok(WorkflowSummary {
                name: w.name,
                latest_version: u32::try_from(w.latest_version).map_err(corrupt)?,
                description: w.description,
                task_count,
                updated_at: w.updated_at,
            })
        })
        .collect()
}
