"""`TaskContext`: what a handler knows about its attempt (ids, deadline, dependencies, cancellation)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from braid._convert import from_jsonable
from braid.task_error import FatalError

T = TypeVar("T")


@dataclass(frozen=True)
class CancelReason:
    """Why an attempt was cancelled.

    ``kind`` is one of ``"server"`` (``CancelTask``, e.g. the run was cancelled; ``detail`` is the
    server's reason), ``"deadline"`` (the attempt's execution timeout passed), ``"lease_lost"``
    (no heartbeat reached the server for a whole lease TTL) or ``"shutdown"`` (the worker's drain
    timeout passed, or it was stopped at once).
    """

    kind: str
    detail: str = ""

    SERVER = "server"
    DEADLINE = "deadline"
    LEASE_LOST = "lease_lost"
    SHUTDOWN = "shutdown"

    @property
    def error_type(self) -> str:
        """The ``TaskError.type`` reported for a task cancelled this way before it started."""
        return {
            self.SERVER: "cancelled",
            self.DEADLINE: "timeout",
            self.LEASE_LOST: "lease_expired",
            self.SHUTDOWN: "worker_shutdown",
        }.get(self.kind, "cancelled")

    def __str__(self) -> str:
        if self.kind == self.SERVER:
            return f"cancelled by the server: {self.detail}" if self.detail else "cancelled by the server"
        return {
            self.DEADLINE: "the attempt's deadline passed",
            self.LEASE_LOST: "the lease could not be extended for a whole lease TTL",
            self.SHUTDOWN: "the worker is shutting down",
        }.get(self.kind, self.kind)


class CancelSignal:
    """A one-shot cancellation flag usable from the worker's event loop and from threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.event = threading.Event()
        self._async_event = asyncio.Event()
        self.reason: CancelReason | None = None

    def cancel(self, reason: CancelReason) -> None:
        """Cancels (the first reason wins). Call on the worker's event loop."""
        if self.reason is None:
            self.reason = reason
        self.event.set()
        self._async_event.set()

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self._async_event.wait()


@dataclass(frozen=True)
class AttemptInfo:
    task_id: str
    run_id: str
    workflow_name: str
    workflow_version: int
    task_name: str
    task_type: str
    attempt: int
    max_attempts: int
    lease_id: str
    deadline: datetime | None
    trace_context: dict[str, str]
    worker_id: str


class TaskContext:
    """What a handler knows about the attempt it runs.

    Cancellation is cooperative: when the server cancels the task (e.g. its run was cancelled),
    the attempt's deadline passes, the lease is probably lost, or the worker's drain timeout
    passes, :attr:`cancelled` becomes true, :meth:`wait_cancelled` returns and
    :attr:`cancel_event` is set. The handler should then return soon (raising
    ``TaskError(..., type="cancelled")`` is customary); its result is still reported.
    """

    def __init__(self, info: AttemptInfo, deps: dict[str, Any], signal: CancelSignal) -> None:
        self._info = info
        self._deps = deps
        self._signal = signal

    def __repr__(self) -> str:
        i = self._info
        return f"TaskContext(task={i.task_name!r}, type={i.task_type!r}, attempt={i.attempt}/{i.max_attempts})"

    @property
    def task_id(self) -> str:
        return self._info.task_id

    @property
    def run_id(self) -> str:
        return self._info.run_id

    @property
    def workflow(self) -> str:
        """The workflow's name."""
        return self._info.workflow_name

    workflow_name = workflow

    @property
    def workflow_version(self) -> int:
        return self._info.workflow_version

    @property
    def task_name(self) -> str:
        return self._info.task_name

    @property
    def task_type(self) -> str:
        return self._info.task_type

    @property
    def attempt(self) -> int:
        """This attempt's number: 1 for the first."""
        return self._info.attempt

    @property
    def max_attempts(self) -> int:
        return self._info.max_attempts

    @property
    def is_last_attempt(self) -> bool:
        """Whether a retryable failure of this attempt will not be retried."""
        return self._info.attempt >= self._info.max_attempts

    @property
    def lease_id(self) -> str:
        return self._info.lease_id

    @property
    def deadline(self) -> datetime | None:
        """When the attempt must be finished (UTC), if the server set one."""
        return self._info.deadline

    @property
    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (negative once passed), or ``None``."""
        if self._info.deadline is None:
            return None
        return (self._info.deadline - datetime.now(UTC)).total_seconds()

    @property
    def trace_context(self) -> dict[str, str]:
        return self._info.trace_context

    @property
    def worker_id(self) -> str:
        """The server's id of the stream that received this assignment."""
        return self._info.worker_id

    @property
    def deps(self) -> dict[str, Any]:
        """Every dependency's output by task name (the assignment's ``deps`` object)."""
        return self._deps

    def dep(self, name: str, type: type[T] | Any = None) -> Any:
        """The output of dependency ``name``, converted to ``type`` (a dataclass, a pydantic
        model, ``list[X]``, ...) when given. Raises a non-retryable ``bad_input`` error when the
        task has no such dependency or the output does not fit."""
        if name not in self._deps:
            raise FatalError(f"task has no dependency output named {name!r}", type="bad_input")
        value = self._deps[name]
        if type is None:
            return value
        try:
            return from_jsonable(value, type)
        except Exception as e:
            raise FatalError(f"output of dependency {name!r} does not fit {type}: {e}", type="bad_input") from e

    @property
    def cancelled(self) -> bool:
        """Whether the attempt has been cancelled."""
        return self._signal.cancelled

    @property
    def cancel_reason(self) -> CancelReason | None:
        """Why the attempt was cancelled, once it has been."""
        return self._signal.reason

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the attempt is cancelled; for sync handlers (``ctx.cancel_event.wait(1.0)``)."""
        return self._signal.event

    async def wait_cancelled(self) -> CancelReason | None:
        """Returns (with the reason) once the attempt is cancelled. For async handlers."""
        await self._signal.wait()
        return self._signal.reason
