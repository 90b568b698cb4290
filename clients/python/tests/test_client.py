"""The client against a real control plane: authoring, errors, triggers, runs."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from conftest import BraidDev, unique

import braid

YAML = """\
# The thumbnails example, under a unique name.
name: {name}
description: Fetch an image, resize it three ways, publish the results.
settings:
  default_retry:
    max_attempts: 3
    initial_backoff: 1s
    multiplier: 2.0
    max_backoff: 1m
  default_task_timeout: 2m
tasks:
  - name: fetch
    task_type: http-get
  - name: small
    task_type: resize
    depends_on: [fetch]
  - name: medium
    task_type: resize
    depends_on: [fetch]
  - name: large
    task_type: resize
    depends_on: [fetch]
    retry:
      max_attempts: 5
  - name: publish
    task_type: upload
    depends_on: [small, medium, large]
    timeout: 30s
"""


def thumbnails_in_code(name: str) -> braid.Workflow:
    wf = braid.Workflow(
        name,
        description="Fetch an image, resize it three ways, publish the results.",
        default_retry=braid.Retry(max_attempts=3, initial_backoff="1s", multiplier=2.0, max_backoff="1m"),
        default_task_timeout="2m",
    )
    fetch = wf.task("fetch", "http-get")
    small = wf.task("small", "resize", depends_on=[fetch])
    medium = wf.task("medium", "resize", depends_on=["fetch"])
    large = wf.task("large", "resize", depends_on=[fetch], retry=braid.Retry(max_attempts=5))
    wf.task("publish", "upload", depends_on=[small, medium, large], timeout="30s")
    return wf


def test_code_workflow_has_the_yaml_content_hash(server: BraidDev, client: braid.Client, tmp_path) -> None:
    name = unique("thumbnails")
    path = tmp_path / "thumbnails.yaml"
    path.write_text(YAML.format(name=name))
    applied = server.cli("workflow", "apply", "-f", str(path), "--output", "json")
    assert applied.returncode == 0, applied.stderr
    from_yaml = json.loads(applied.stdout)
    assert from_yaml["created"] is True and from_yaml["version"] == 1

    stored = client.apply_workflow(thumbnails_in_code(name))
    assert stored.created is False, "the code form must be the same content as the YAML"
    assert stored.version == 1
    assert stored.content_hash == from_yaml["content_hash"]

    # The dict (file) form, with durations spelled differently, is the same content too.
    as_dict = {
        "name": name,
        "description": "Fetch an image, resize it three ways, publish the results.",
        "settings": {
            "default_retry": {"max_attempts": 3, "initial_backoff": "1000ms", "multiplier": 2, "max_backoff": "60s"},
            "default_task_timeout": "2m",
        },
        "tasks": [
            {"name": "fetch", "task_type": "http-get"},
            {"name": "small", "task_type": "resize", "depends_on": ["fetch"]},
            {"name": "medium", "task_type": "resize", "depends_on": ["fetch"]},
            {"name": "large", "task_type": "resize", "depends_on": ["fetch"], "retry": {"max_attempts": 5}},
            {"name": "publish", "task_type": "upload", "depends_on": ["small", "medium", "large"], "timeout": "30s"},
        ],
    }
    again = client.apply_workflow(as_dict)
    assert (again.created, again.version, again.content_hash) == (False, 1, from_yaml["content_hash"])
    assert client.apply_workflow(thumbnails_in_code(name).to_dict()).content_hash == from_yaml["content_hash"]

    # The stored form has every default written out.
    got = client.get_workflow(name)
    assert got.content_hash == from_yaml["content_hash"]
    publish = got.definition.tasks[-1]
    assert (publish.name, publish.timeout, publish.retry.max_attempts) == ("publish", "30s", 3)
    assert client.validate_workflow(thumbnails_in_code(name)).valid

    # A change makes version 2.
    changed = thumbnails_in_code(name)
    changed.description = "changed"
    v2 = client.apply_workflow(changed)
    assert (v2.created, v2.version) == (True, 2)
    assert v2.content_hash != from_yaml["content_hash"]
    assert any(w.name == name and w.latest_version == 2 for w in client.list_workflows(page_size=500))


def test_invalid_definition_raises_with_every_violation(client: braid.Client) -> None:
    broken = {
        "name": unique("broken"),
        "tasks": [
            {"name": "a", "task_type": "x", "depends_on": ["c"]},
            {"name": "b", "task_type": "x", "depends_on": ["a"]},
            {"name": "c", "task_type": "x", "depends_on": ["b", "missing"]},
        ],
    }
    with pytest.raises(braid.InvalidArgumentError) as caught:
        client.apply_workflow(broken)
    err = caught.value
    assert isinstance(err, braid.BraidError)
    assert err.code.name == "INVALID_ARGUMENT"
    assert err.violations == [
        ("tasks[0].depends_on[0]", "cycle: a -> b -> c -> a"),
        ("tasks[2].depends_on[1]", 'unknown task "missing"'),
    ]
    checked = client.validate_workflow(broken)
    assert not checked.valid
    assert checked.errors == err.violations

    with pytest.raises(braid.DefinitionError, match=r"tasks\[0\]\.retries: unknown field"):
        client.apply_workflow({"name": "x", "tasks": [{"name": "a", "task_type": "x", "retries": 3}]})


def test_trigger_with_an_idempotency_key_returns_the_same_run(client: braid.Client) -> None:
    name = unique("idem")
    wf = braid.Workflow(name)
    wf.task("only", unique("never-served"))
    client.apply_workflow(wf)
    key = f"key-{uuid.uuid4()}"

    run, created = client.trigger(name, {"n": 1, "s": "x"}, idempotency_key=key)
    assert created is True
    assert run.state is braid.RunState.RUNNING
    assert run.input == {"n": 1, "s": "x"}
    assert run.task("only").state is braid.TaskState.READY

    again = client.trigger(name, {"s": "x", "n": 1}, idempotency_key=key)
    assert again.created is False
    assert again.run.id == run.id

    with pytest.raises(braid.AlreadyExistsError, match=run.id):
        client.trigger(name, {"n": 2}, idempotency_key=key)

    other, created = client.trigger(name, {"n": 1})
    assert created and other.id != run.id

    listed = client.list_runs(name)
    assert {r.id for r in listed} == {run.id, other.id}
    assert listed.next_page_token == ""
    assert [r.id for r in client.list_runs(name, states=["running"], page_size=1)] == [other.id]

    with pytest.raises(braid.NotFoundError):
        client.get_run(str(uuid.uuid4()))
    with pytest.raises(braid.InvalidArgumentError) as bad:
        client.get_run("nope")
    assert bad.value.violations and bad.value.violations[0].path == "run_id"
    with pytest.raises(braid.NotFoundError):
        client.trigger(unique("no-such-workflow"))

    # Cancelling a run nobody works on cancels its tasks at once.
    for r in (run, other):
        cancelled = client.cancel_run(r.id, reason="test over")
        assert cancelled.state is braid.RunState.CANCELLED
        assert cancelled.reason and "test over" in cancelled.reason
    events = [e.kind for e in client.watch_run(run.id, timeout=10)]
    assert events[0] == "run_created" and events[-1] == "run_cancelled"


def test_async_client(server: BraidDev) -> None:
    async def main() -> None:
        async with braid.AsyncClient(server.endpoint) as c:
            name = unique("async")
            wf = braid.Workflow(name)
            wf.task("only", unique("never-served"))
            stored = await c.apply_workflow(wf)
            assert stored.created and stored.version == 1
            run, created = await c.trigger(name, [1, 2, 3], idempotency_key="k")
            assert created and run.input == [1, 2, 3]
            assert (await c.trigger(name, [1, 2, 3], idempotency_key="k")).created is False
            assert (await c.get_run(run.id)).id == run.id
            await c.cancel_run(run.id)
            kinds = [e.kind async for e in c.watch_run(run.id, timeout=10)]
            assert kinds[0] == "run_created" and kinds[-1] == "run_cancelled"
            final = await c.wait_run(run.id, timeout=10)
            assert final.state is braid.RunState.CANCELLED
            with pytest.raises(braid.InvalidArgumentError) as caught:
                await c.apply_workflow({"name": "-bad", "tasks": []})
            assert [v.path for v in caught.value.violations] == ["name", "tasks"]

    asyncio.run(main())
