//! Tests of the state enums: names, parsing, terminality and every transition pair.

use super::*;

#[test]
fn run_transitions_exactly_as_specified() {
    use RunState::*;
    let allowed = [
        (Queued, Running),
        (Queued, Cancelled),
        (Running, Succeeded),
        (Running, Failed),
        (Running, Cancelled),
        (Failed, Running),
    ];
    for &from in RunState::ALL {
        for &to in RunState::ALL {
            let want = allowed.contains(&(from, to));
            assert_eq!(from.can_transition_to(to), want, "{from} -> {to}");
        }
    }
}

#[test]
fn task_transitions_exactly_as_specified() {
    use TaskState::*;
    let allowed = [
        (Pending, Ready),
        (Pending, Skipped),
        (Pending, Cancelled),
        (Ready, Leased),
        (Ready, Cancelled),
        (Leased, Ready),
        (Leased, Succeeded),
        (Leased, Failed),
        (Leased, Cancelled),
        (Failed, Ready),
        (Skipped, Pending),
    ];
    for &from in TaskState::ALL {
        for &to in TaskState::ALL {
            let want = allowed.contains(&(from, to));
            assert_eq!(from.can_transition_to(to), want, "{from} -> {to}");
        }
    }
}

#[test]
fn terminal_states() {
    let run: Vec<_> = RunState::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.as_str()).collect();
    assert_eq!(run, ["succeeded", "failed", "cancelled"]);
    let task: Vec<_> = TaskState::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.as_str()).collect();
    assert_eq!(task, ["succeeded", "failed", "cancelled", "skipped"]);
    // Leaving a terminal state is only ever a redrive, and never into a terminal state.
    for &from in TaskState::ALL.iter().filter(|s| s.is_terminal()) {
        for &to in TaskState::ALL {
            if from.can_transition_to(to) {
                assert!(!to.is_terminal(), "{from} -> {to}");
            }
        }
    }
    // No state moves to itself.
    assert!(RunState::ALL.iter().all(|&s| !s.can_transition_to(s)));
    assert!(TaskState::ALL.iter().all(|&s| !s.can_transition_to(s)));
}

#[test]
fn names_round_trip() {
    let run: Vec<_> = RunState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(run, ["queued", "running", "succeeded", "failed", "cancelled"]);
    let task: Vec<_> = TaskState::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(task, ["pending", "ready", "leased", "succeeded", "failed", "cancelled", "skipped"]);
    let trigger: Vec<_> = TriggerSource::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(trigger, ["api", "schedule", "redrive"]);
    for &s in RunState::ALL {
        assert_eq!(s.as_str().parse::<RunState>(), Ok(s));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
    }
    for &s in TaskState::ALL {
        assert_eq!(s.as_str().parse::<TaskState>(), Ok(s));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
    }
    for &s in TriggerSource::ALL {
        assert_eq!(s.as_str().parse::<TriggerSource>(), Ok(s));
        assert_eq!(serde_json::from_str::<TriggerSource>(&format!("\"{s}\"")).unwrap(), s);
    }
}

#[test]
fn parse_errors_carry_the_bad_value() {
    let err = "Running".parse::<RunState>().unwrap_err();
    assert_eq!(err, ParseStateError { kind: "run state", value: "Running".into() });
    assert_eq!(err.to_string(), "unknown run state \"Running\"");
    assert_eq!("".parse::<TaskState>().unwrap_err().kind, "task state");
    assert_eq!("done".parse::<TaskState>().unwrap_err().value, "done");
    assert_eq!("cron".parse::<TriggerSource>().unwrap_err().to_string(), "unknown trigger source \"cron\"");
}
