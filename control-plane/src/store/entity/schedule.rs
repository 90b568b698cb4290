//! Entity for `schedules`: cron triggers of a workflow.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub name: String,
    pub workflow_name: String,
    pub cron: String,
    pub timezone: String,
    #[sea_orm(column_type = "Text")]
    pub input: String,
    pub overlap_policy: String,
    pub paused: bool,
    pub start_at: Option<DateTimeUtc>,
    pub end_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Missed ticks older than this are skipped.
    pub catchup_window_ms: i64,
    /// `all` or `latest`.
    pub catchup_policy: String,
    /// Nominal time of the newest tick handled (fired or skipped).
    pub last_tick: Option<DateTimeUtc>,
    /// Priority of the runs it makes: 0 high, 1 normal, 2 low.
    pub priority: i16,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
