//! Entity for `run_events`: the append-only per-run event log (`sequence` is per run, `id` global).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_events")]
pub struct Model {
    /// Auto-increment: leave `NotSet` on insert.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub run_id: Uuid,
    pub sequence: i64,
    pub kind: String,
    pub task_name: Option<String>,
    pub attempt: Option<i32>,
    /// JSON object (`{}` by default).
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::run::Entity",
        from = "Column::RunId",
        to = "super::run::Column::Id",
        on_delete = "Cascade"
    )]
    Run,
}

impl Related<super::run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Run.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
