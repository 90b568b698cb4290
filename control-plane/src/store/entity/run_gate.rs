//! Entity for `run_gates`: runs under a concurrency limit or a schedule's buffer, queued or running.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_gates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: Uuid,
    pub tenant_id: String,
    pub workflow_name: String,
    pub concurrency_key: Option<String>,
    /// Set when the run waits for the previous run of its schedule (overlap `buffer_one`).
    pub schedule_id: Option<Uuid>,
    /// `queued` or `running`; the row is deleted when the run ends.
    pub state: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
