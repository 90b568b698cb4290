//! What the simulated clients and workers were told: acknowledged triggers, leases received, results and their verdicts.

use crate::store::leases::LeaseKey;
use uuid::Uuid;

/// An acknowledged trigger.
#[derive(Debug, Clone)]
pub struct Ack {
    pub key: Option<String>,
    pub run_id: Uuid,
}

/// A lease a worker received.
#[derive(Debug, Clone)]
pub struct Leased {
    pub key: LeaseKey,
    pub worker: String,
}

/// A result a worker sent and the answer it got.
#[derive(Debug, Clone)]
pub struct Sent {
    pub key: LeaseKey,
    pub worker: String,
    /// "succeeded" or "failed".
    pub outcome: &'static str,
    pub output_json: Option<String>,
    pub accepted: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub acks: Vec<Ack>,
    pub leases: Vec<Leased>,
    pub sent: Vec<Sent>,
    /// Keys the client used, in order of first use.
    pub keys: Vec<String>,
}
