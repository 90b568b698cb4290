//! Entity for `dead_letters`: tasks whose attempts are exhausted, until redriven.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub task_id: Uuid,
    pub run_id: Uuid,
    pub workflow_name: String,
    pub workflow_version: i32,
    pub task_name: String,
    pub task_type: String,
    /// JSON error of the last attempt.
    #[sea_orm(column_type = "Text")]
    pub error: String,
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub redriven_at: Option<DateTimeUtc>,
    /// `type` of the last error, for filtering.
    pub error_type: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::task::Entity",
        from = "Column::TaskId",
        to = "super::task::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
}

impl Related<super::task::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Task.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
