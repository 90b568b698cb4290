//! A simulated worker process: its stream's id, slots, the attempts it holds, and whether it is up.

use crate::store::leases::LeaseKey;
use std::collections::BTreeMap;
use uuid::Uuid;

/// How a simulated attempt ends when its worker finishes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    Succeed { output_json: String },
    Fail { retryable: bool },
}

/// One attempt a worker holds.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: LeaseKey,
    pub run_id: Uuid,
    pub task: String,
    pub plan: Planned,
    /// Finished while the worker was stalled: sent when it resumes.
    pub finished: bool,
}

/// A worker process; each (re)start is a new stream with a new id.
#[derive(Debug)]
pub struct SimWorker {
    /// `w1`, `w2`, …
    pub name: String,
    pub incarnation: u32,
    /// The control plane its stream is on.
    pub control_plane: usize,
    pub slots: usize,
    pub up: bool,
    pub stalled: bool,
    /// Held attempts by job number.
    pub jobs: BTreeMap<u64, Job>,
    next_job: u64,
}

impl SimWorker {
    pub fn new(index: usize, control_plane: usize, slots: usize) -> Self {
        Self {
            name: format!("w{}", index + 1),
            incarnation: 1,
            control_plane,
            slots,
            up: true,
            stalled: false,
            jobs: BTreeMap::new(),
            next_job: 0,
        }
    }

    /// The id of its current stream: `w1`, then `w1.2` after a restart.
    pub fn id(&self) -> String {
        if self.incarnation == 1 { self.name.clone() } else { format!("{}.{}", self.name, self.incarnation) }
    }

    /// Whether it can take work and talk to its control plane now.
    pub fn active(&self) -> bool {
        self.up && !self.stalled
    }

    pub fn free_slots(&self) -> usize {
        self.slots.saturating_sub(self.jobs.len())
    }

    pub fn hold(&mut self, job: Job) -> u64 {
        self.next_job += 1;
        self.jobs.insert(self.next_job, job);
        self.next_job
    }

    /// Dies: everything it held is gone with it.
    pub fn crash(&mut self) {
        self.up = false;
        self.stalled = false;
        self.jobs.clear();
    }

    /// Comes back as a new stream.
    pub fn restart(&mut self) {
        self.up = true;
        self.incarnation += 1;
    }

    /// Drops the jobs of these leases (cancelled, or no longer current); returns their numbers.
    pub fn drop_leases(&mut self, keys: &[LeaseKey]) -> Vec<u64> {
        let gone: Vec<u64> = self.jobs.iter().filter(|(_, j)| keys.contains(&j.key)).map(|(n, _)| *n).collect();
        for n in &gone {
            self.jobs.remove(n);
        }
        gone
    }
}
