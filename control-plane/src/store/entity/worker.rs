//! Entity for `workers`: one row per worker session (connected, heartbeating, disconnected).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    /// JSON array of task types.
    #[sea_orm(column_type = "Text")]
    pub task_types: String,
    pub slots: i32,
    /// JSON object of labels.
    #[sea_orm(column_type = "Text")]
    pub labels: String,
    pub sdk_language: String,
    pub sdk_version: String,
    /// The control-plane replica serving this worker's stream.
    pub control_plane: String,
    pub draining: bool,
    pub connected_at: DateTimeUtc,
    pub last_heartbeat_at: DateTimeUtc,
    pub disconnected_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
