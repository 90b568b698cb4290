//! Checks of the dependency graph (unknown, self and repeated dependencies, cycles, depth) and its topological order.

use std::collections::{HashMap, VecDeque};

use super::path::{Path, Problems, TaskField, Top};
use crate::domain::definition::WorkflowDefinition;
use crate::domain::limits;

/// Edges run from a dependency to its dependent ("runs before").
struct Graph {
    /// `preds[t]`: `(dependency, position in t's depends_on)`, in list order.
    preds: Vec<Vec<(usize, usize)>>,
    /// `succs[d]`: tasks that depend on `d`, in definition order.
    succs: Vec<Vec<usize>>,
}

/// Checks the dependencies and returns the tasks (as indices) by level, then
/// definition order. With a cycle the order is meaningless (and an error is reported).
pub(super) fn check(def: &WorkflowDefinition, problems: &mut Problems) -> Vec<usize> {
    let graph = build(def, problems);
    let cycles = report_cycles(def, &graph, problems);
    if cycles {
        return (0..def.tasks.len()).collect();
    }
    let (order, level, deepest_pred) = levels(&graph);
    let deepest = order.last().copied();
    if let Some(end) = deepest.filter(|&end| level[end] + 1 > limits::MAX_DEPTH) {
        let mut start = end;
        while let Some(pred) = deepest_pred[start] {
            start = pred;
        }
        let name = |i: usize| &def.tasks[i].name;
        let reason = format!(
            "dependency chain too deep: {} tasks from {:?} to {:?} (limit {})",
            level[end] + 1,
            name(start),
            name(end),
            limits::MAX_DEPTH
        );
        problems.push(&Path::top(Top::Tasks), reason);
    }
    order
}

/// Checks each `depends_on` entry and keeps the edges of the good ones.
fn build(def: &WorkflowDefinition, problems: &mut Problems) -> Graph {
    let n = def.tasks.len();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, task) in def.tasks.iter().enumerate() {
        index.entry(task.name.as_str()).or_insert(i);
    }
    let mut graph = Graph { preds: vec![Vec::new(); n], succs: vec![Vec::new(); n] };
    for (i, task) in def.tasks.iter().enumerate() {
        let list_at = Path::task_field(i, TaskField::DependsOn);
        let count = task.depends_on.len();
        if count > limits::MAX_DEPENDENCIES_PER_TASK {
            let limit = limits::MAX_DEPENDENCIES_PER_TASK;
            problems.push(&list_at, format!("too many dependencies: {count} (limit {limit})"));
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(count);
        for (j, dep) in task.depends_on.iter().enumerate() {
            let at = list_at.index(j);
            if let Some(first) = seen.insert(dep.as_str(), j) {
                seen.insert(dep.as_str(), first);
                problems.push(&at, format!("{dep:?} is listed twice (also depends_on[{first}])"));
            } else if *dep == task.name {
                problems.push(&at, format!("task {dep:?} cannot depend on itself"));
            } else if let Some(&d) = index.get(dep.as_str()) {
                graph.preds[i].push((d, j));
                graph.succs[d].push(i);
            } else {
                problems.push(&at, format!("unknown task {dep:?}"));
            }
        }
    }
    graph
}

/// Reports one concrete cycle per strongly connected component with a cycle;
/// returns whether there was any. Linear in the size of the graph: the work
/// arrays are allocated once and reset per component, and breadth-first search
/// records each task's distance, so nothing is walked twice.
fn report_cycles(def: &WorkflowDefinition, graph: &Graph, problems: &mut Problems) -> bool {
    let n = graph.succs.len();
    let mut found = false;
    let mut member = vec![false; n];
    // `(parent, distance from start)` of each task the search reached.
    let mut reached: Vec<Option<(usize, usize)>> = vec![None; n];
    for component in strongly_connected(&graph.succs) {
        if component.len() < 2 {
            continue; // Self-dependencies are reported and kept out of the graph.
        }
        found = true;
        component.iter().for_each(|&t| member[t] = true);
        let start = component.iter().copied().min().unwrap_or_default();
        // Shortest way round through `start`: breadth-first along "runs before".
        let mut queue = VecDeque::from([(start, 0)]);
        while let Some((v, dist)) = queue.pop_front() {
            for &w in &graph.succs[v] {
                if member[w] && w != start && reached[w].is_none() {
                    reached[w] = Some((v, dist + 1));
                    queue.push_back((w, dist + 1));
                }
            }
        }
        let dist = |t: usize| reached[t].map_or(0, |(_, d)| d);
        // The dependency of `start` that closes the shortest cycle (first listed on ties).
        let closing = graph.preds[start].iter().filter(|&&(d, _)| member[d]).min_by_key(|&&(d, j)| (dist(d), j));
        if let Some(&(last, position)) = closing {
            let mut chain = vec![start];
            let mut t = last;
            while t != start {
                chain.push(t);
                t = reached[t].map_or(start, |(p, _)| p);
            }
            chain[1..].reverse();
            chain.push(start);
            let names: Vec<&str> = chain.iter().map(|&t| def.tasks[t].name.as_str()).collect();
            let at = Path::task_field(start, TaskField::DependsOn).index(position);
            problems.push(&at, format!("cycle: {}", names.join(" -> ")));
        }
        for &t in &component {
            (member[t], reached[t]) = (false, None);
        }
    }
    found
}

/// Tarjan's algorithm, iterative so long chains cannot overflow the stack.
fn strongly_connected(succs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = succs.len();
    let mut index: Vec<Option<usize>> = vec![None; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root].is_some() {
            continue;
        }
        let mut calls = vec![(root, 0)];
        (index[root], low[root], next) = (Some(next), next, next + 1);
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, position)) = calls.last_mut() {
            let v = *v;
            if let Some(&w) = succs[v].get(*position) {
                *position += 1;
                match index[w] {
                    None => {
                        (index[w], low[w], next) = (Some(next), next, next + 1);
                        stack.push(w);
                        on_stack[w] = true;
                        calls.push((w, 0));
                    }
                    Some(w_index) if on_stack[w] => low[v] = low[v].min(w_index),
                    Some(_) => {}
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if Some(low[v]) == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

/// For an acyclic graph: the tasks ordered by (level, index), each task's level
/// (0 = no dependencies) and the dependency it has its level through.
fn levels(graph: &Graph) -> (Vec<usize>, Vec<usize>, Vec<Option<usize>>) {
    let n = graph.succs.len();
    let mut waiting: Vec<usize> = graph.preds.iter().map(Vec::len).collect();
    let mut level = vec![0; n];
    let mut via = vec![None; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&t| waiting[t] == 0).collect();
    while let Some(v) = queue.pop_front() {
        for &w in &graph.succs[v] {
            if via[w].is_none() || level[v] + 1 > level[w] {
                (level[w], via[w]) = (level[v] + 1, Some(v));
            }
            waiting[w] -= 1;
            if waiting[w] == 0 {
                queue.push_back(w);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&t| (level[t], t));
    (order, level, via)
}
