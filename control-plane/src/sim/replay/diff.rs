//! The differences between two replays of one recording: tasks added or removed, scheduled differently, ending differently.

use super::Replay;

/// One difference between the base replay (the recorded version) and the other one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A task only the other version has, and how it ended there.
    Added { task: String, end: String },
    /// A task only the base version has, and how it ended there.
    Removed { task: String, end: String },
    /// A task both have, scheduled differently: what changed, in words.
    Scheduled { task: String, changes: Vec<String> },
    /// A task both have that ends differently.
    Outcome { task: String, from: String, to: String },
    /// The run ends differently.
    Run { from: String, to: String },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Added { task, end } => write!(f, "+ {task:<16} added: {end}"),
            Difference::Removed { task, end } => write!(f, "- {task:<16} removed (was {end})"),
            Difference::Scheduled { task, changes } => write!(f, "~ {task:<16} {}", changes.join("; ")),
            Difference::Outcome { task, from, to } => write!(f, "! {task:<16} ends {from} -> {to}"),
            Difference::Run { from, to } => write!(f, "! {:<16} ends {from} -> {to}", "(run)"),
        }
    }
}

fn end(r: &super::TaskEnd) -> String {
    match r.wave {
        Some(w) => format!("{} after {} attempt(s), first leased in round {w}", r.state, r.attempts),
        None => format!("{}, never leased", r.state),
    }
}

/// What changes from `base` to `other`, tasks in name order, the run last.
pub fn diff(base: &Replay, other: &Replay) -> Vec<Difference> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = base.tasks.keys().chain(other.tasks.keys()).collect();
    for name in names {
        let task = name.clone();
        match (base.tasks.get(name), other.tasks.get(name)) {
            (None, Some(o)) => out.push(Difference::Added { task, end: end(o) }),
            (Some(b), None) => out.push(Difference::Removed { task, end: end(b) }),
            (Some(b), Some(o)) => {
                let mut changes = Vec::new();
                if b.depends_on != o.depends_on {
                    changes.push(format!("depends on {:?} -> {:?}", b.depends_on, o.depends_on));
                }
                if b.wave != o.wave {
                    let w = |w: Option<u32>| w.map_or_else(|| "never".to_owned(), |w| w.to_string());
                    changes.push(format!("first leased in round {} -> {}", w(b.wave), w(o.wave)));
                }
                if b.attempts != o.attempts {
                    changes.push(format!("attempts {} -> {}", b.attempts, o.attempts));
                }
                if !changes.is_empty() {
                    out.push(Difference::Scheduled { task: task.clone(), changes });
                }
                if b.state != o.state {
                    out.push(Difference::Outcome { task, from: b.state.to_string(), to: o.state.to_string() });
                }
            }
            (None, None) => {}
        }
    }
    if base.run_state != other.run_state {
        out.push(Difference::Run { from: base.run_state.to_string(), to: other.run_state.to_string() });
    }
    out
}
