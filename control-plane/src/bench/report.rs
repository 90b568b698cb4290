//! The bench's report: figures (median, min, max of the repetitions) with the targets, the table and JSON.

use super::config::Sizes;
use super::dbcost::Cost;
use super::deployment::Facts;
use super::machine::Machine;
use super::stats::Summary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One figure over its repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `mode.what`, e.g. `throughput.bulk`.
    pub name: String,
    pub mode: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: Vec<f64>,
    /// The target for it (on the reference machine, full-size workload), or empty.
    pub target: &'static str,
}

/// The targets, by figure name.
fn target(name: &str) -> &'static str {
    match name {
        "throughput.bulk" => "≥ 10000 (stretch 12000)",
        "throughput.per_call" => "report (BullMQ add: 2400)",
        "latency.p50" => "≤ 2.5 (stretch 2)",
        "latency.p99" => "≤ 6 (stretch 5)",
        "dag.burst" => "≥ 80 (stretch 100)",
        "dag.makespan_p50" => "≤ 40 (stretch 25)",
        "dag.makespan_p99" => "≤ 75 (stretch 50)",
        "drain.rate" => "≥ throughput.bulk",
        "drain.peak_rss" => "bounded",
        "soak.rss_first" | "soak.rss_last" | "soak.p99_first" | "soak.p99_last" => "flat (first ≈ last)",
        _ => "",
    }
}

/// Figures in the order they were first measured.
#[derive(Debug, Default)]
pub struct Figures(Vec<Figure>);

impl Figures {
    /// Adds one measurement of figure `mode.what`; non-finite values are dropped.
    pub fn add(&mut self, mode: &'static str, what: &str, label: &'static str, unit: &'static str, value: f64) {
        if !value.is_finite() {
            return;
        }
        let name = format!("{mode}.{what}");
        let i = match self.0.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                let target = target(&name);
                self.0.push(Figure {
                    name,
                    mode,
                    label,
                    unit,
                    median: 0.0,
                    min: 0.0,
                    max: 0.0,
                    samples: vec![],
                    target,
                });
                self.0.len() - 1
            }
        };
        let f = &mut self.0[i];
        f.samples.push(value);
        if let Some(s) = Summary::of(&f.samples) {
            (f.median, f.min, f.max) = (s.median, s.min, s.max);
        }
    }

    pub fn into_vec(self) -> Vec<Figure> {
        self.0
    }
}

/// One phase's database cost, named.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseCost {
    pub phase: String,
    #[serde(flatten)]
    pub cost: Cost,
}

/// Database cost per task: measured, or why not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatabaseCost {
    pub available: bool,
    pub note: Option<String>,
    pub phases: Vec<PhaseCost>,
}

/// What one mode measured, repetition by repetition (every repetition has `tasks` and `completions`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModeRecord {
    pub repetitions: Vec<serde_json::Value>,
}

/// The whole report, as printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub braid_bench: u32,
    pub started_at: String,
    pub elapsed_s: f64,
    pub command: Vec<String>,
    pub quick: bool,
    pub machine: Machine,
    pub deployment: Facts,
    pub workers: String,
    pub task_type: String,
    pub sizes: Sizes,
    pub figures: Vec<Figure>,
    pub modes: BTreeMap<&'static str, ModeRecord>,
    pub database_cost: DatabaseCost,
    pub notes: Vec<String>,
}

fn num(v: f64, unit: &str) -> String {
    match unit {
        "tasks/s" | "runs/s" => format!("{v:.0}"),
        "MiB" => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

impl Report {
    /// The table and notes printed without `--json`; `explain_db` adds the top statements.
    pub fn text(&self, explain_db: bool) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let d = &self.deployment;
        let _ = writeln!(
            out,
            "braid bench on {} cores ({}), {} MiB, kernel {}, {} build{}",
            m.cores,
            m.cpu,
            m.memory_mib,
            m.kernel,
            m.build_profile,
            m.git_commit.as_deref().map(|c| format!(" of {c}")).unwrap_or_default()
        );
        let db = if d.database.is_empty() { String::new() } else { format!(", {}", d.database) };
        let _ = writeln!(out, "deployment: {} at {}{db}; workers: {}", d.kind, d.endpoint, self.workers);
        let repeat = self.sizes.repeat;
        let _ = writeln!(
            out,
            "each figure: median of {repeat} repetition(s){}\n",
            if self.quick { ", --quick" } else { "" }
        );
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.label.to_owned(),
                    num(f.median, f.unit),
                    num(f.min, f.unit),
                    num(f.max, f.unit),
                    f.unit.to_owned(),
                    f.target.to_owned(),
                ]
            })
            .collect();
        let head = ["figure", "median", "min", "max", "unit", "target"].map(String::from);
        let mut widths = [0usize; 6];
        for r in std::iter::once(&head).chain(&rows) {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        for r in std::iter::once(&head).chain(&rows) {
            let pad = |i: usize| " ".repeat(widths[i] - r[i].chars().count());
            let line = format!(
                "{}{}  {}{}  {}{}  {}{}  {}{}  {}",
                r[0],
                pad(0),
                pad(1),
                r[1],
                pad(2),
                r[2],
                pad(3),
                r[3],
                r[4],
                pad(4),
                r[5]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let dbc = &self.database_cost;
        if !dbc.available {
            if let Some(note) = &dbc.note {
                let _ = writeln!(out, "\ndatabase cost per task: not measured: {note}");
            }
        } else if explain_db {
            for p in &dbc.phases {
                let c = &p.cost;
                let _ = writeln!(
                    out,
                    "\n{}: {} tasks, {} statements ({:.2}/task), {} write transactions ({:.2}/task); top statements:",
                    p.phase,
                    c.tasks,
                    c.statements,
                    c.statements_per_task,
                    c.write_transactions,
                    c.write_transactions_per_task
                );
                for t in &c.top {
                    let _ = writeln!(
                        out,
                        "  {:>9} calls {:>7.2}/task {:>8.3} ms  {}",
                        t.calls, t.per_task, t.mean_ms, t.query
                    );
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}
