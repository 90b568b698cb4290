"""The worker SDK in-process against a real control plane. Every test serves task types of its
own, so that workers of different tests never take each other's tasks."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import pydantic
import pytest
from conftest import BraidDev, free_port, running, unique, wait_until

import braid


def make_worker(server: BraidDev, **kwargs) -> braid.Worker:
    kwargs.setdefault("slots", 4)
    kwargs.setdefault("name", unique("py"))
    kwargs.setdefault("drain_timeout", 10.0)
    return braid.Worker(server.endpoint, **kwargs)


@dataclass
class Doubled:
    value: int
    path: list[str] = field(default_factory=list)


def test_dag_runs_with_dependency_outputs(server: BraidDev, client: braid.Client) -> None:
    t = {k: unique(k) for k in ("a", "b", "c", "d")}
    name = unique("dag")
    wf = braid.Workflow(name)
    a = wf.task("a", t["a"])
    b = wf.task("b", t["b"], depends_on=[a])
    c = wf.task("c", t["c"], depends_on=[a])
    wf.task("d", t["d"], depends_on=[b, c])
    client.apply_workflow(wf)
    seen: dict[str, dict] = {}
    worker = make_worker(server)

    @worker.task(t["a"])
    async def step_a(input: dict, ctx: braid.TaskContext) -> dict:
        seen["a"] = {"deps": ctx.deps, "attempt": ctx.attempt, "max": ctx.max_attempts, "wf": ctx.workflow}
        return {"value": input["value"] * 2, "path": ["a"]}

    @worker.task(t["b"])
    async def step_b(input: dict, ctx: braid.TaskContext) -> Doubled:
        got = ctx.dep("a", Doubled)
        assert isinstance(got, Doubled)
        return Doubled(got.value + 10, [*got.path, "b"])

    @worker.task(t["c"])
    def step_c(input: dict, ctx: braid.TaskContext) -> dict:  # sync: runs in the thread pool
        got = ctx.dep("a")
        return {"value": got["value"] * got["value"], "path": [*got["path"], "c"]}

    @worker.task(t["d"])
    async def step_d(input: dict, ctx: braid.TaskContext) -> dict:
        seen["d"] = {"deps": ctx.deps, "task": ctx.task_name, "run": ctx.run_id}
        with pytest.raises(braid.FatalError) as missing:
            ctx.dep("nope")
        assert missing.value.type == "bad_input" and not missing.value.retryable
        return {
            "value": ctx.dep("b")["value"] + ctx.dep("c")["value"],
            "paths": [ctx.dep("b")["path"], ctx.dep("c")["path"]],
        }

    with running(worker):
        run, _ = client.trigger(name, {"value": 3})
        done = client.wait_run(run.id, timeout=30)
    assert done.state is braid.RunState.SUCCEEDED, done
    # a: 3*2 = 6; b: 6+10 = 16; c: 6*6 = 36; d: 16+36 = 52.
    assert done.output == {"d": {"value": 52, "paths": [["a", "b"], ["a", "c"]]}}
    assert seen["a"] == {"deps": {}, "attempt": 1, "max": 3, "wf": name}
    assert seen["d"]["deps"] == {"b": {"value": 16, "path": ["a", "b"]}, "c": {"value": 36, "path": ["a", "c"]}}
    assert (seen["d"]["task"], seen["d"]["run"]) == ("d", run.id)
    for task in done.tasks:
        assert task.state is braid.TaskState.SUCCEEDED and task.attempt == 1
        assert [a.outcome for a in task.attempts] == ["succeeded"]
    kinds = [e.kind for e in client.watch_run(run.id, timeout=10)]
    assert kinds[0] == "run_created" and kinds[-1] == "run_succeeded"
    assert kinds.count("task_succeeded") == 4
    stats = worker.stats()
    assert (stats.started, stats.succeeded, stats.accepted, stats.rejected, stats.in_flight) == (4, 4, 4, 0, 0)


def test_failing_task_is_retried_then_dead_lettered_and_redriven(server: BraidDev, client: braid.Client) -> None:
    kind = unique("fail")
    name = unique("failing")
    wf = braid.Workflow(name)
    wf.task("flaky", kind, retry=braid.Retry(max_attempts=2, initial_backoff="10ms", max_backoff="50ms"))
    client.apply_workflow(wf)
    healed = threading.Event()
    worker = make_worker(server)

    @worker.task(kind)
    async def flaky(input: dict, ctx: braid.TaskContext) -> dict:
        if not healed.is_set() and ctx.attempt <= input["times"]:
            raise braid.TaskError(f"injected failure {ctx.attempt}", type="injected", details={"n": ctx.attempt})
        return {"attempt": ctx.attempt}

    with running(worker):
        run, _ = client.trigger(name, {"times": 5})
        done = client.wait_run(run.id, timeout=30)
        assert done.state is braid.RunState.FAILED
        task = done.task("flaky")
        assert task.state is braid.TaskState.FAILED
        assert task.attempt == 2 and len(task.attempts) == 2
        assert [a.outcome for a in task.attempts] == ["failed", "failed"]
        assert task.last_error.type == "injected" and task.last_error.retryable
        assert task.last_error.details == {"n": 2}

        letters = client.list_dead_letters(name)
        assert len(letters) == 1
        letter = letters[0]
        assert (letter.run_id, letter.task_name, letter.task_type, letter.attempts) == (run.id, "flaky", kind, 2)
        assert letter.last_error.type == "injected"
        assert [d.id for d in client.list_dead_letters(name, error_type="injected")] == [letter.id]
        assert client.list_dead_letters(name, error_type="other") == []

        with pytest.raises(ValueError):
            client.redrive()
        healed.set()
        result = client.redrive([letter.id])
        assert result.redriven == 1 and result.task_ids == [letter.task_id]
        final = wait_until(
            lambda: (r := client.get_run(run.id)).state is braid.RunState.SUCCEEDED and r, 30, "the redriven run"
        )
        assert final.task("flaky").output == {"attempt": final.task("flaky").attempt}
        assert client.list_dead_letters(name) == []


def test_error_kinds(server: BraidDev, client: braid.Client) -> None:
    kind = unique("errors")
    name = unique("errors")
    wf = braid.Workflow(name)
    wf.task("t", kind, retry=braid.Retry(max_attempts=3, initial_backoff="10ms"))
    client.apply_workflow(wf)
    worker = make_worker(server)

    @worker.task(kind)
    def handler(input: dict, ctx: braid.TaskContext) -> dict:
        if ctx.attempt == 1:
            raise ValueError("not a number") from KeyError("k")
        raise braid.FatalError("give up", type="hopeless")

    with running(worker):
        run, _ = client.trigger(name, {})
        done = client.wait_run(run.id, timeout=30)
    task = done.task("t")
    assert done.state is braid.RunState.FAILED and task.attempt == 2, "a fatal error ends the task at once"
    first, second = task.attempts
    assert (first.error.type, first.error.retryable) == ("ValueError", True)
    assert first.error.message == "not a number: 'k'"
    assert "Traceback" in first.error.details["traceback"]
    assert (second.error.type, second.error.retryable, second.error.message) == ("hopeless", False, "give up")


def test_cancel_reaches_running_handlers(server: BraidDev, client: braid.Client) -> None:
    async_kind, sync_kind = unique("wait-async"), unique("wait-sync")
    name = unique("cancel")
    wf = braid.Workflow(name)
    wf.task("async", async_kind)
    wf.task("sync", sync_kind)
    client.apply_workflow(wf)
    started = {"async": threading.Event(), "sync": threading.Event()}
    reasons: dict[str, braid.CancelReason | None] = {}
    worker = make_worker(server)

    @worker.task(async_kind)
    async def wait_async(input: object, ctx: braid.TaskContext) -> dict:
        started["async"].set()
        reasons["async"] = await asyncio.wait_for(ctx.wait_cancelled(), 30)
        assert ctx.cancelled
        raise braid.TaskError("cancelled", type="cancelled")

    @worker.task(sync_kind)
    def wait_sync(input: object, ctx: braid.TaskContext) -> dict:
        started["sync"].set()
        assert ctx.cancel_event.wait(30), "no cancellation"
        reasons["sync"] = ctx.cancel_reason
        raise braid.TaskError("cancelled", type="cancelled")

    with running(worker):
        run, _ = client.trigger(name)
        for which, event in started.items():
            assert event.wait(15), f"the {which} handler did not start"
        client.cancel_run(run.id, reason="enough")
        done = client.wait_run(run.id, timeout=15)
        wait_until(lambda: worker.stats().in_flight == 0 and len(reasons) == 2, 10, "both handlers to return")
    assert done.state is braid.RunState.CANCELLED
    assert {t.state for t in done.tasks} == {braid.TaskState.CANCELLED}
    for which in ("async", "sync"):
        reason = reasons[which]
        assert reason is not None and reason.kind == "server", reasons
        assert reason.detail == f"run {run.id} was cancelled: enough", reasons


def test_deadline_cancels_the_handler(server: BraidDev, client: braid.Client) -> None:
    kind = unique("slow")
    name = unique("deadline")
    wf = braid.Workflow(name)
    wf.task("slow", kind, timeout="300ms", retry=braid.Retry(max_attempts=1))
    client.apply_workflow(wf)
    reasons = []
    worker = make_worker(server)

    @worker.task(kind)
    async def slow(input: object, ctx: braid.TaskContext) -> dict:
        assert ctx.deadline is not None and 0 < ctx.time_left <= 1.0
        reasons.append(await asyncio.wait_for(ctx.wait_cancelled(), 10))
        raise braid.TaskError("too slow", type="timeout")

    with running(worker):
        run, _ = client.trigger(name)
        done = client.wait_run(run.id, timeout=20)
    assert done.state is braid.RunState.FAILED
    assert reasons and reasons[0].kind == "deadline"


@dataclass
class Line:
    sku: str
    qty: int


@dataclass
class Order:
    id: str
    lines: list[Line]
    note: str | None = None


class Customer(pydantic.BaseModel):
    name: str
    vip: bool = False


def test_typed_inputs_and_sync_handlers_in_the_thread_pool(server: BraidDev, client: braid.Client) -> None:
    order_kind, customer_kind = unique("order"), unique("customer")
    name = unique("typed")
    wf = braid.Workflow(name)
    wf.task("order", order_kind, retry=braid.Retry(max_attempts=1))
    wf.task("customer", customer_kind, depends_on=["order"], retry=braid.Retry(max_attempts=1))
    client.apply_workflow(wf)
    seen: dict[str, object] = {}
    worker = make_worker(server)

    @worker.task(order_kind)
    def order(input: Order, ctx: braid.TaskContext) -> Order:
        seen["order"] = input
        seen["order_thread"] = threading.current_thread().name
        return Order(id=input.id, lines=[Line(x.sku, x.qty * 2) for x in input.lines])

    @worker.task(customer_kind)
    async def customer(input: Customer | None) -> Customer:  # input only, no ctx
        seen["customer"] = input
        seen["customer_thread"] = threading.current_thread().name
        return Customer(name=input.name.upper(), vip=True)

    with running(worker):
        run, _ = client.trigger(name, {"id": "o-1", "lines": [{"sku": "a", "qty": 2}], "name": "ada", "extra": 1})
        done = client.wait_run(run.id, timeout=30)
        bad, _ = client.trigger(name, {"id": "o-2", "lines": [{"sku": "a"}]})
        failed = client.wait_run(bad.id, timeout=30)

    assert done.state is braid.RunState.SUCCEEDED, done.task("order").last_error
    assert seen["order"] == Order(id="o-1", lines=[Line("a", 2)])
    assert str(seen["order_thread"]).startswith("braid-task-"), seen
    assert seen["customer"] == Customer(name="ada")
    assert seen["customer_thread"] == f"worker-{worker.name}", "async handlers run on the worker's loop"
    assert done.task("order").output == {"id": "o-1", "lines": [{"sku": "a", "qty": 4}], "note": None}
    assert done.output == {"customer": {"name": "ADA", "vip": True}}

    assert failed.state is braid.RunState.FAILED
    error = failed.task("order").last_error
    assert (error.type, error.retryable) == ("bad_input", False)
    assert "qty" in error.message


def test_slots_are_enforced(server: BraidDev, client: braid.Client) -> None:
    kind = unique("busy")
    name = unique("slots")
    wf = braid.Workflow(name)
    for i in range(6):
        wf.task(f"t{i}", kind)
    client.apply_workflow(wf)
    lock = threading.Lock()
    now_running = [0]
    peak = [0]
    worker = make_worker(server, slots=2)

    @worker.task(kind)
    def busy(input: object, ctx: braid.TaskContext) -> dict:
        with lock:
            now_running[0] += 1
            peak[0] = max(peak[0], now_running[0])
        time.sleep(0.2)
        with lock:
            now_running[0] -= 1
        return {"ok": True}

    with running(worker):
        run, _ = client.trigger(name)
        done = client.wait_run(run.id, timeout=30)
    assert done.state is braid.RunState.SUCCEEDED
    assert peak[0] == 2


def test_register_workflow_applies_it_with_step_handlers(server: BraidDev, client: braid.Client) -> None:
    name = unique("steps")
    first_kind = unique("first")
    wf = braid.Workflow(name, default_retry=braid.Retry(max_attempts=2))

    @wf.step(task_type=first_kind)
    async def first(input: dict, ctx: braid.TaskContext) -> dict:
        return {"n": input["n"] + 1}

    @wf.step(task_type=unique("second"), depends_on=[first], timeout="10s")
    def second(input: dict, ctx: braid.TaskContext) -> dict:
        return {"n": ctx.dep("first")["n"] * 10}

    assert first.braid_task.name == "first" and second.braid_task.depends_on == ["first"]
    worker = make_worker(server)
    worker.register_workflow(wf)
    assert worker.task_types == sorted([first.braid_task.task_type, second.braid_task.task_type])
    with running(worker):
        stored = client.get_workflow(name)
        assert stored.version == 1 and [t.name for t in stored.definition.tasks] == ["first", "second"]
        run, _ = client.trigger(name, {"n": 1})
        done = client.wait_run(run.id, timeout=30)
    assert done.output == {"second": {"n": 20}}
    workers = [w for w in client.list_workers() if w.name == worker.name]
    assert all(w.sdk_language == "python" for w in workers)


def test_worker_configuration_errors(server: BraidDev) -> None:
    worker = braid.Worker(server.endpoint)
    with pytest.raises(ValueError, match="invalid task type"):
        worker.task("a b", lambda i, c: None)
    worker.task("ok", lambda i, c: None)
    with pytest.raises(ValueError, match="twice"):
        worker.task("ok", lambda i, c: None)
    with pytest.raises(ValueError):
        braid.Worker(server.endpoint, slots=0)
    with pytest.raises(braid.WorkerError, match="no task handlers"):
        asyncio.run(braid.Worker(server.endpoint).run_async())
    # A Hello the server refuses (INVALID_ARGUMENT) stops the worker instead of retrying forever.
    greedy = braid.Worker(server.endpoint, slots=1_000_000)
    greedy.task("ok", lambda i, c: None)
    with pytest.raises(braid.WorkerError, match="INVALID_ARGUMENT"):
        asyncio.run(asyncio.wait_for(greedy.run_async(), 20))


def test_reconnects_and_keeps_its_lease_across_a_server_restart(tmp_path) -> None:
    port = free_port()
    data = tmp_path / "braid"
    dev = BraidDev(data, lease_ttl="10s", grpc_port=port)
    kind, name = unique("nap"), unique("restart")
    started, release = threading.Event(), threading.Event()
    events: list[braid.WorkerEvent] = []
    worker = braid.Worker(
        dev.endpoint, name=unique("py"), slots=1, reconnect_backoff=(0.05, 0.5), on_event=events.append
    )

    @worker.task(kind)
    async def nap(input: object, ctx: braid.TaskContext) -> dict:
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.02)
        return {"attempt": ctx.attempt, "cancelled": ctx.cancelled}

    try:
        with running(worker):
            with braid.Client(dev.endpoint) as client:
                wf = braid.Workflow(name)
                wf.task("nap", kind)
                client.apply_workflow(wf)
                run, _ = client.trigger(name)
            assert started.wait(15)
            dev.stop()
            wait_until(lambda: any(isinstance(e, braid.Disconnected) for e in events), 15, "the disconnection")
            dev = BraidDev(data, lease_ttl="10s", grpc_port=port)
            wait_until(lambda: worker.stats().connects >= 2, 30, "the reconnection")
            release.set()
            with braid.Client(dev.endpoint) as client:
                done = client.wait_run(run.id, timeout=30)
    finally:
        dev.stop()
    assert done.state is braid.RunState.SUCCEEDED
    task = done.task("nap")
    assert task.output == {"attempt": 1, "cancelled": False}, "the lease survived the reconnect"
    assert [a.outcome for a in task.attempts] == ["succeeded"]
