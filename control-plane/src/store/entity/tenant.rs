//! Entity for `tenants`: one row per tenant (the first migration inserts `default`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: DateTimeUtc,
    pub quota_triggers_per_second: Option<i32>,
    pub quota_trigger_burst: Option<i32>,
    pub quota_concurrent_runs: Option<i32>,
    pub quota_workers: Option<i32>,
    pub quota_schedules: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
