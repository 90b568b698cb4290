"""examples/example_worker.py as a subprocess: its task types, SIGTERM drain, a stale result.

Each test has a control plane of its own (`fresh_server`, lease TTL 1 s), because the example
serves fixed task type names."""

from __future__ import annotations

import signal

from conftest import BraidDev, ledger_lines, wait_ledger

import braid


def test_example_task_types(fresh_server: BraidDev, tmp_path, example_workers) -> None:
    w = example_workers(fresh_server.endpoint, "py-types", tmp_path / "types.jsonl", slots=2)
    with braid.Client(fresh_server.endpoint) as client:
        wf = braid.Workflow("types", default_retry=braid.Retry(max_attempts=3, initial_backoff="10ms"))
        a = wf.task("a", "py-a")
        n = wf.task("n", "noop", depends_on=[a])
        f = wf.task("f", "fail", depends_on=[a])
        wf.task("e", "echo", depends_on=[n, f])
        client.apply_workflow(wf)
        run, _ = client.trigger("types", {"value": 3, "times": 1})
        done = client.wait_run(run.id, timeout=30)
    assert done.state is braid.RunState.SUCCEEDED, done
    assert done.task("a").output == {"value": 6, "path": ["python"]}
    assert done.task("n").output == {}
    assert done.task("f").output == {"attempt": 2}
    assert done.task("f").attempts[0].error.type == "injected"
    assert done.output == {"e": {"input": {"value": 3, "times": 1}, "deps": {"n": {}, "f": {"attempt": 2}}}}
    lines = ledger_lines(w.ledger)
    assert {(x["event"], x["outcome"]) for x in lines} == {
        ("start", None),
        ("finish", "succeeded"),
        ("finish", "failed"),
        ("ack", "accepted"),
    }
    failed = next(x for x in lines if x["event"] == "finish" and x["outcome"] == "failed")
    assert (failed["error_type"], failed["attempt"], failed["worker"]) == ("injected", 1, "py-types")
    assert all(x["code"] == 0 for x in lines if x["event"] == "ack")


def test_sigterm_drains_the_running_task(fresh_server: BraidDev, tmp_path, example_workers) -> None:
    w = example_workers(fresh_server.endpoint, "py-drain", tmp_path / "drain.jsonl", slots=2)
    with braid.Client(fresh_server.endpoint) as client:
        wf = braid.Workflow("drain")
        wf.task("nap", "sleep", retry=braid.Retry(max_attempts=3, initial_backoff="10ms"))
        client.apply_workflow(wf)
        # 3 s: longer than the lease TTL (1 s), so only heartbeats during the drain keep the lease.
        run, _ = client.trigger("drain", {"ms": 3000})
        started = wait_ledger(w.ledger, lambda x: x["event"] == "start", 20, "the task to start")
        assert started["attempt"] == 1
        w.signal(signal.SIGTERM)
        assert w.wait(30) == 0, w.log_tail()
        done = client.wait_run(run.id, timeout=10)
    assert done.state is braid.RunState.SUCCEEDED, done
    task = done.task("nap")
    assert task.attempt == 1 and [a.outcome for a in task.attempts] == ["succeeded"], "never reassigned"
    assert task.output["slept_ms"] == 3000 and task.output["attempt"] == 1
    events = [(x["event"], x["attempt"], x["outcome"]) for x in ledger_lines(w.ledger)]
    assert events == [("start", 1, None), ("finish", 1, "succeeded"), ("ack", 1, "accepted")]
    assert "draining" in w.log_tail()


def test_stale_result_is_rejected_and_never_retried(fresh_server: BraidDev, tmp_path, example_workers) -> None:
    first = example_workers(fresh_server.endpoint, "py-first", tmp_path / "first.jsonl", slots=1, types="sleep")
    with braid.Client(fresh_server.endpoint) as client:
        wf = braid.Workflow("stale")
        wf.task("nap", "sleep", retry=braid.Retry(max_attempts=3, initial_backoff="10ms", max_backoff="100ms"))
        client.apply_workflow(wf)
        run, _ = client.trigger("stale", {"ms": 4000})
        wait_ledger(first.ledger, lambda x: x["event"] == "start", 20, "attempt 1 to start on the first worker")
        first.signal(signal.SIGSTOP)
        try:
            # The lease (TTL 1 s) expires while the first worker is stopped; the second takes attempt 2.
            second = example_workers(
                fresh_server.endpoint, "py-second", tmp_path / "second.jsonl", slots=1, types="sleep"
            )
            wait_ledger(
                second.ledger,
                lambda x: x["event"] == "start" and x["attempt"] == 2,
                30,
                "attempt 2 on the second worker",
            )
        finally:
            first.signal(signal.SIGCONT)
        ack = wait_ledger(first.ledger, lambda x: x["event"] == "ack", 30, "the first worker's ack")
        assert (ack["attempt"], ack["outcome"], ack["code"]) == (1, "rejected", 9), ack
        done = client.wait_run(run.id, timeout=30)

    assert done.state is braid.RunState.SUCCEEDED
    task = done.task("nap")
    assert task.output["attempt"] == 2 and task.output["worker"] == "py-second"
    assert [a.outcome for a in task.attempts] == ["lease_expired", "succeeded"]
    # The rejected result was sent once and never again; nothing else was acked on the first worker.
    acks = [x for x in ledger_lines(first.ledger) if x["event"] == "ack"]
    assert len(acks) == 1
    assert "stale" in first.log_tail()
    second_acks = [(x["attempt"], x["outcome"]) for x in ledger_lines(second.ledger) if x["event"] == "ack"]
    assert second_acks == [(2, "accepted")]
