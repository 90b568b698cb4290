//! Entity for `tasks`: one task of one run, with its lease and retry bookkeeping.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub run_id: Uuid,
    pub name: String,
    pub task_type: String,
    /// `pending`, `ready`, `leased`, `succeeded`, `failed`, `cancelled` or `skipped`.
    pub state: String,
    /// JSON array of task names.
    #[sea_orm(column_type = "Text")]
    pub depends_on: String,
    /// Dependencies not yet succeeded.
    pub pending_deps: i32,
    pub attempt: i32,
    pub max_attempts: i32,
    /// JSON retry policy.
    #[sea_orm(column_type = "Text")]
    pub retry_policy: String,
    pub timeout_ms: i64,
    pub lease_id: Option<Uuid>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub worker_id: Option<String>,
    pub available_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub output: Option<String>,
    /// JSON error of the last failed attempt.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// When the task was last handed to the dispatch queue (reconciler bookkeeping).
    pub published_at: Option<DateTimeUtc>,
    /// The run's priority: 0 high, 1 normal, 2 low.
    pub priority: i16,
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
    #[sea_orm(has_many = "super::task_attempt::Entity")]
    TaskAttempt,
    #[sea_orm(has_many = "super::dead_letter::Entity")]
    DeadLetter,
}

impl Related<super::run::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Run.def()
    }
}

impl Related<super::task_attempt::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TaskAttempt.def()
    }
}

impl Related<super::dead_letter::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DeadLetter.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
