"""API tokens against a real `braid dev` with auth on: no token is UNAUTHENTICATED; the admin token
it printed authors, triggers and serves tasks (client, async client, worker, example worker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import BraidDev, running, unique

import braid
from braid.client import auth_metadata, resolve_token


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests say which token they use; one in the environment would change what "none" means."""
    monkeypatch.delenv("BRAID_TOKEN", raising=False)


def echo_workflow(task_type: str) -> braid.Workflow:
    wf = braid.Workflow(unique("auth"))
    wf.task("only", task_type)
    return wf


def test_the_admin_token_is_printed_and_kept(auth_server: BraidDev) -> None:
    assert auth_server.token is not None
    assert auth_server.token.startswith("brd_") and len(auth_server.token) == 4 + 43
    assert (auth_server.data_dir / "admin-token").read_text().strip() == auth_server.token


def test_a_client_without_a_token_is_unauthenticated(auth_server: BraidDev) -> None:
    with braid.Client(auth_server.endpoint) as c:
        with pytest.raises(braid.UnauthenticatedError):
            c.list_workflows()
        with pytest.raises(braid.UnauthenticatedError):
            c.apply_workflow(echo_workflow("noop"))
    with braid.Client(auth_server.endpoint, token="brd_" + "A" * 43) as c, pytest.raises(braid.UnauthenticatedError):
        c.list_workflows()


def test_a_client_with_the_token_applies_and_triggers(auth_server: BraidDev) -> None:
    task_type = unique("t")
    wf = echo_workflow(task_type)
    with braid.Client(auth_server.endpoint, token=auth_server.token) as c:
        stored = c.apply_workflow(wf)
        assert stored.created
        triggered = c.trigger(wf.name, {"n": 1})
        assert triggered.created
        assert c.get_run(triggered.run.id).id == triggered.run.id
        c.cancel_run(triggered.run.id, "no worker in this test")


def test_the_token_comes_from_braid_token(auth_server: BraidDev, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAID_TOKEN", f"{auth_server.token}\n")  # as $(cat admin-token) might keep it
    with braid.Client(auth_server.endpoint) as c:
        c.list_workflows()
    # An explicit empty token means none, whatever the environment says.
    with braid.Client(auth_server.endpoint, token="") as c, pytest.raises(braid.UnauthenticatedError):
        c.list_workflows()


def test_the_async_client_sends_the_token(auth_server: BraidDev) -> None:
    async def main() -> None:
        async with braid.AsyncClient(auth_server.endpoint) as c:
            with pytest.raises(braid.UnauthenticatedError):
                await c.list_workflows()
        async with braid.AsyncClient(auth_server.endpoint, token=auth_server.token) as c:
            wf = echo_workflow(unique("t"))
            await c.apply_workflow(wf)
            run = (await c.trigger(wf.name)).run
            assert (await c.get_run(run.id)).id == run.id
            await c.cancel_run(run.id)

    asyncio.run(main())


def test_a_worker_with_the_token_completes_a_run(auth_server: BraidDev) -> None:
    task_type = unique("t")
    wf = echo_workflow(task_type)
    worker = braid.Worker(auth_server.endpoint, name=unique("py"), token=auth_server.token, drain_timeout=5.0)
    seen: list[Any] = []

    @worker.task(task_type)
    def handle(input: Any) -> dict[str, Any]:
        seen.append(input)
        return {"ok": True}

    worker.register_workflow(wf)  # applied with the worker's token
    with braid.Client(auth_server.endpoint, token=auth_server.token) as c, running(worker):
        run = c.trigger(wf.name, {"n": 7}).run
        done = c.wait_run(run.id, timeout=30)
    assert done.state == braid.RunState.SUCCEEDED, done
    assert seen == [{"n": 7}]


def test_a_worker_without_a_token_is_refused(auth_server: BraidDev) -> None:
    worker = braid.Worker(auth_server.endpoint, name=unique("py"), connect_timeout=5.0)
    worker.task(unique("t"), lambda _: None)
    with pytest.raises(braid.WorkerError, match="UNAUTHENTICATED"):
        asyncio.run(asyncio.wait_for(worker.run_async(), 30))


@pytest.mark.parametrize("via", ["--token", "BRAID_TOKEN"])
def test_the_example_worker_takes_a_token(
    auth_server: BraidDev, example_workers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    # The example's task types are fixed: only these tests serve `echo` on the auth server, one at a time.
    token = auth_server.token or ""
    if via == "BRAID_TOKEN":
        monkeypatch.setenv("BRAID_TOKEN", token)  # the subprocess inherits it
    extra = ("--token", token) if via == "--token" else ()
    example_workers(auth_server.endpoint, unique("ex"), tmp_path / "ledger.jsonl", types="echo", extra=extra)
    wf = braid.Workflow(unique("auth-ex"))
    wf.task("only", "echo")
    with braid.Client(auth_server.endpoint, token=auth_server.token) as c:
        c.apply_workflow(wf)
        run = c.trigger(wf.name, {"hello": "token"}).run
        done = c.wait_run(run.id, timeout=30)
    assert done.state == braid.RunState.SUCCEEDED, done


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("brd_abc def", "whitespace"),
        ("brd_abc\ndef", "whitespace"),
        ("brd_abc\x00", "a control character"),
        ("brd_é", "a non-ASCII character"),
        ("Bearer brd_abc", "without 'Bearer '"),
    ],
)
def test_a_malformed_token_is_refused_before_any_call(value: str, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        braid.Client("127.0.0.1:1", token=value)
    with pytest.raises(ValueError, match=what):
        braid.AsyncClient("127.0.0.1:1", token=value)
    with pytest.raises(ValueError, match=what):
        braid.Worker("127.0.0.1:1", token=value)


def test_token_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_token(None) is None
    assert auth_metadata(None) == []
    assert resolve_token("  brd_x\n") == "brd_x"
    assert auth_metadata("brd_x") == [("authorization", "Bearer brd_x")]
    monkeypatch.setenv("BRAID_TOKEN", "brd_env")
    assert resolve_token(None) == "brd_env"
    assert resolve_token("") is None
    monkeypatch.setenv("BRAID_TOKEN", "brd_a b")
    with pytest.raises(ValueError, match=r"invalid \$BRAID_TOKEN"):
        resolve_token(None)
