//! Dependency-graph validation: unknown, self and repeated dependencies, cycles, depth, order.

use super::{chain, errors, valid, workflow};
use crate::domain::limits;

fn names(def: &crate::domain::WorkflowDefinition) -> Vec<String> {
    valid(def).tasks.into_iter().map(|t| t.name).collect()
}

#[test]
fn diamond_is_valid_and_ordered_by_level() {
    let def = workflow(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
    let wf = valid(&def);
    assert_eq!(names(&def), ["a", "b", "c", "d"]);
    assert_eq!(wf.tasks[3].depends_on, ["b", "c"]);
    assert_eq!(wf.tasks[3].task_type, "work");
}

#[test]
fn topological_order_is_level_then_definition_order() {
    let def = workflow(&[
        ("report", &["join"]),
        ("fetch_b", &[]),
        ("join", &["clean_a", "fetch_b"]),
        ("clean_a", &["fetch_a"]),
        ("fetch_a", &[]),
        ("audit", &[]),
    ]);
    let want = ["fetch_b", "fetch_a", "audit", "clean_a", "join", "report"];
    for _ in 0..5 {
        assert_eq!(names(&def), want);
    }
}

#[test]
fn cycle_and_unknown_dependency_are_both_reported() {
    let def = workflow(&[("a", &["b"]), ("b", &["a", "zz"])]);
    assert_eq!(
        errors(&def),
        ["tasks[0].depends_on[0]: cycle: a -> b -> a", "tasks[1].depends_on[1]: unknown task \"zz\""]
    );
}

#[test]
fn three_node_cycle_is_named_in_run_order() {
    let def = workflow(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &["c"])]);
    assert_eq!(errors(&def), ["tasks[0].depends_on[0]: cycle: a -> b -> c -> a"]);
}

#[test]
fn each_disjoint_cycle_gets_its_own_error() {
    let def = workflow(&[("ok", &[]), ("x", &["ok", "y"]), ("y", &["x"]), ("p", &["r"]), ("q", &["p"]), ("r", &["q"])]);
    assert_eq!(
        errors(&def),
        ["tasks[1].depends_on[1]: cycle: x -> y -> x", "tasks[3].depends_on[0]: cycle: p -> q -> r -> p"]
    );
}

#[test]
fn one_error_per_component_naming_its_shortest_cycle() {
    // a -> b -> a and a -> c -> d -> a share `a`: one component, one error.
    let def = workflow(&[("a", &["d", "b"]), ("b", &["a"]), ("c", &["a"]), ("d", &["c"])]);
    assert_eq!(errors(&def), ["tasks[0].depends_on[1]: cycle: a -> b -> a"]);
}

#[test]
fn self_dependency_and_repeats() {
    let def = workflow(&[("a", &[]), ("b", &["b", "a", "a"])]);
    assert_eq!(
        errors(&def),
        [
            "tasks[1].depends_on[0]: task \"b\" cannot depend on itself",
            "tasks[1].depends_on[2]: \"a\" is listed twice (also depends_on[1])",
        ]
    );
}

#[test]
fn too_many_dependencies() {
    let n = limits::MAX_DEPENDENCIES_PER_TASK + 1;
    let mut def = workflow(&[]);
    let deps: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    for name in &deps {
        def.tasks.push(super::task(name, &[]));
    }
    let dep_refs: Vec<&str> = deps.iter().map(String::as_str).collect();
    def.tasks.push(super::task("sink", &dep_refs));
    assert_eq!(errors(&def), [format!("tasks[{n}].depends_on: too many dependencies: 101 (limit 100)")]);
    def.tasks[n].depends_on.pop();
    valid(&def);
}

#[test]
fn depth_limit_counts_tasks() {
    valid(&chain(limits::MAX_DEPTH));
    assert_eq!(
        errors(&chain(limits::MAX_DEPTH + 1)),
        ["tasks: dependency chain too deep: 101 tasks from \"t0\" to \"t100\" (limit 100)"]
    );
}

#[test]
fn long_graphs_do_not_overflow() {
    let mut def = chain(limits::MAX_TASKS);
    assert_eq!(errors(&def), ["tasks: dependency chain too deep: 1000 tasks from \"t0\" to \"t999\" (limit 100)"]);
    def.tasks[0].depends_on.push("t999".into());
    let errs = errors(&def);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("tasks[0].depends_on[0]: cycle: t0 -> t1 -> t2 -> "), "{}", &errs[0][..80]);
    assert!(errs[0].ends_with(" -> t998 -> t999 -> t0"));
}

#[test]
fn dependency_on_a_duplicated_name_uses_the_first() {
    let def = workflow(&[("a", &[]), ("a", &[]), ("b", &["a"])]);
    assert_eq!(errors(&def), ["tasks[1].name: duplicate task name \"a\" (also tasks[0])"]);
}

/// Shapes that a 4 MB request can carry and that made cycle reporting quadratic: a long chain
/// closed by one task depending on every other (each candidate's distance was walked again),
/// and thousands of two-task cycles (two arrays of every task were allocated per cycle).
#[test]
fn adversarial_cycles_are_reported_in_linear_time() {
    let n = 20_000;
    let mut def = chain(n);
    def.tasks[0].depends_on = (1..n).map(|i| format!("t{i}")).collect();
    let errs = errors(&def);
    assert!(errs.iter().any(|e| e == "tasks[0].depends_on[0]: cycle: t0 -> t1 -> t0"), "{:?}", &errs[..2]);

    let mut def = workflow(&[]);
    def.tasks = (0..n).map(|i| super::task(&format!("t{i}"), &[format!("t{}", i ^ 1).as_str()])).collect();
    let errs = errors(&def);
    let cycles = errs.iter().filter(|e| e.contains(": cycle: ")).count();
    assert_eq!(cycles, n / 2);
    assert!(errs.contains(&"tasks[2].depends_on[0]: cycle: t2 -> t3 -> t2".to_owned()), "{:?}", &errs[..3]);
}
