//! idempotency-storm: 200 concurrent triggers with one idempotency key across two control planes make one run.

use super::{Harness, all_succeeded, workers};
use crate::drill::DrillError;
use crate::drill::invariants::Evidence;
use crate::drill::report::Check;
use crate::drill::workload::{SLEEP, Trigger, sleep_input};
use std::collections::BTreeSet;

const TRIGGERS: usize = 200;

pub async fn run(h: &mut Harness) -> Result<Evidence, DrillError> {
    h.start_control_plane(&[]).await?;
    h.start_control_plane(&[]).await?;
    h.start_workers(&workers(1, 4, "sleep")).await?;
    h.apply(&[SLEEP]).await?;
    let key = format!("storm-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    h.workload = format!(
        "{TRIGGERS} concurrent TriggerRun of {SLEEP} with idempotency key {key} and the same input, alternating between cp1 and cp2"
    );
    let triggers =
        (0..TRIGGERS).map(|_| Trigger { workflow: SLEEP.into(), input: sleep_input(100), key: Some(key.clone()) });
    let first = h.fault(format!("{TRIGGERS} triggers with one key at once, on two control planes"));
    let got = h.trigger(triggers.collect(), TRIGGERS).await;
    h.healed_at(first);
    let ev = h.finish().await?;

    let ids: BTreeSet<&str> = got.acks.iter().map(|a| a.run_id.as_str()).collect();
    let created = got.acks.iter().filter(|a| a.created).count();
    let per_cp: Vec<String> = h
        .apis
        .iter()
        .map(|api| format!("{}: {}", api.endpoint, got.acks.iter().filter(|a| a.endpoint == api.endpoint).count()))
        .collect();
    h.checks.push(Check::cond(
        "all-answered",
        "every trigger was acknowledged",
        got.acks.len() == TRIGGERS,
        format!("{} of {TRIGGERS} acknowledged ({}); {} gave up", got.acks.len(), per_cp.join(", "), got.gave_up.len()),
    ));
    h.checks.push(Check::new(
        "one-run",
        "every answer names the same run, created exactly once, and the database holds one run",
        if ids.len() == 1 && created == 1 && ev.snapshot.runs.len() == 1 {
            Vec::new()
        } else {
            ids.iter().map(|id| format!("run {id}")).collect()
        },
        format!(
            "{} distinct run id(s) answered, {created} answer(s) with created = true, {} run(s) in the database",
            ids.len(),
            ev.snapshot.runs.len()
        ),
    ));
    h.checks.push(all_succeeded(&ev, &BTreeSet::new()));
    Ok(ev)
}
