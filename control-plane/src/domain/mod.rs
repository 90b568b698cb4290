//! Braid's domain: workflow definitions and their validation, retry policy, lifecycle states, records (pure, no I/O).

pub mod auth;
pub mod blockers;
pub mod cron;
pub mod definition;
pub mod flow;
pub mod limits;
pub mod payload;
pub mod payload_ref;
pub mod quota;
pub mod records;
pub mod retry;
pub mod schedule;
pub mod state;
pub mod validate;

pub use definition::{DefinitionParseError, RetrySpec, RunSettings, SourceFormat, TaskDefinition, WorkflowDefinition};
pub use flow::{CatchupPolicy, ConcurrencyPolicy, OverlapPolicy, Priority};
pub use retry::RetryPolicy;
pub use state::{ParseStateError, RunState, TaskState, TriggerSource};
pub use validate::{
    ResolvedTask, ValidWorkflow, ValidationError, validate, validate_idempotency_key, validate_input_json,
};
