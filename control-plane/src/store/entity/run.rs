//! Entity for `runs`: one execution of a workflow version, with its state and event counter.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub workflow_name: String,
    pub workflow_version: i32,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    #[sea_orm(column_type = "Text")]
    pub input: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub output: Option<String>,
    pub idempotency_key: Option<String>,
    pub input_hash: Option<String>,
    pub trigger_source: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    /// Last sequence number used in `run_events` for this run (0: none yet).
    pub next_event_seq: i64,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// 0 high, 1 normal, 2 low.
    pub priority: i16,
    pub concurrency_key: Option<String>,
    /// The schedule whose tick made the run, and the tick's nominal time (unique together).
    pub schedule_id: Option<Uuid>,
    pub scheduled_for: Option<DateTimeUtc>,
    /// The run has a row in `run_gates` (its workflow limits concurrency, or it waits for its
    /// schedule's previous run): its end must admit the next queued run.
    pub gated: bool,
    /// The W3C `traceparent` of the run's `trigger_run` span; NULL when traces are off.
    #[sea_orm(column_type = "Text", nullable)]
    pub trace_context: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::task::Entity")]
    Task,
    #[sea_orm(has_many = "super::run_event::Entity")]
    RunEvent,
}

impl Related<super::task::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Task.def()
    }
}

impl Related<super::run_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RunEvent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
