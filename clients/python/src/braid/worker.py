"""`Worker`: serves task handlers over one ``WorkerService.Connect`` stream.

A port of the Rust reference SDK (``worker-rs``)::

    worker = braid.Worker(endpoint="127.0.0.1:7400", slots=8)

    @worker.task("resize")
    async def resize(input: ResizeInput, ctx: braid.TaskContext) -> dict:
        fetched = ctx.dep("fetch")
        return {"url": fetched["url"], "width": input.width}

    worker.run()   # until SIGINT/SIGTERM, then a graceful drain

The SDK does the protocol work: ``Hello``/``Welcome``, heartbeats at the server's interval listing
every lease it holds, results fenced by ``(task_id, attempt, lease_id)``, reconnection with
jittered exponential backoff, local slot limits, cancellation, and a bounded graceful drain.

**Handlers** are ``async def`` functions (run on the worker's event loop) or plain functions
(run in a thread pool of ``slots`` threads), called as ``handler(input, ctx)``: ``input`` is
the run input (the ``input`` part of the assignment), converted to the first parameter's
annotation when that is a dataclass or a pydantic model (otherwise passed as parsed JSON);
``ctx`` is a :class:`braid.TaskContext`. A handler may also take only ``input``. The return
value is the task's output (anything JSON-able, a dataclass or a pydantic model). When the
input does not fit, the handler is not called and the attempt fails with a non-retryable
``bad_input`` error.

**Errors**: raise :class:`braid.TaskError` (retryable unless ``retryable=False``) or
:class:`braid.FatalError`; any other exception is a retryable error whose type is the
exception's class name (its traceback goes into the error's details).

**Cancellation** is cooperative (see :class:`braid.TaskContext`): the server's ``CancelTask``, a
newer attempt of the same task, the attempt's deadline, a probably lost lease (no heartbeat
reached a live stream for a whole lease TTL) and the drain timeout cancel the attempt's signal;
the handler decides when to return, and its result is still reported.

**Results** are sent with the attempt's lease, also on a new stream after a reconnect. A result
the server rejects (stale lease: code 9 ``FAILED_PRECONDITION``; malformed: code 3) is logged
(warning / error), counted in ``stats().rejected`` and never sent again. A result sent on a
stream that broke before its ack arrived is sent again on the next stream.

**Shutdown**: :meth:`Worker.run` drains on SIGINT or SIGTERM (a second signal stops at once);
``await worker.run_async(stop)`` drains when ``stop`` (an ``asyncio.Event``, a
``threading.Event`` or an awaitable) is set/done; :meth:`Worker.shutdown` does the same from
any thread. Draining sends ``Drain``, keeps heartbeating, lets running tasks finish until the
drain timeout (30 s by default), then cancels them and waits up to 5 s more; it sends the
results, waits (up to 5 s) for their acks, half-closes the stream and returns.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import dataclasses
import inspect
import json
import logging
import os
import queue
import random
import signal
import socket
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from braid import _pb, _tracing
from braid._convert import dumps, from_jsonable, wants_conversion
from braid._version import __version__
from braid.client import (
    CHANNEL_OPTIONS,
    AsyncClient,
    PemSource,
    auth_metadata,
    channel_credentials,
    resolve_endpoint,
    resolve_token,
)
from braid.context import AttemptInfo, CancelReason, CancelSignal, TaskContext
from braid.errors import BraidError
from braid.task_error import TaskError
from braid.workflow import Workflow

log = logging.getLogger("braid.worker")

#: Used when Welcome leaves heartbeat_interval unset or zero.
DEFAULT_HEARTBEAT = 10.0
#: Used when Welcome leaves lease_ttl unset or zero.
DEFAULT_LEASE_TTL = 30.0
#: After the drain timeout cancels the handlers: how long they have left to return.
CANCEL_GRACE = 5.0
#: Once every result is sent during a drain: how long to wait for their acks.
ACK_WAIT = 5.0
#: After half-closing: how long to wait for the server to end the stream.
CLOSE_WAIT = 5.0

#: google.rpc.Code values used in ResultAck.code.
CODE_INVALID_ARGUMENT = 3
CODE_FAILED_PRECONDITION = 9

_PERMANENT = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)


def _valid_task_type(name: str) -> bool:
    if not name or len(name) > 64 or not name.isascii() or not name[0].isalnum():
        return False
    return all(c.isalnum() or c in "_.-" for c in name)


def default_name() -> str:
    """``<hostname>-<pid>``."""
    host = socket.gethostname().strip() or os.environ.get("HOSTNAME", "") or "worker"
    return f"{host}-{os.getpid()}"


class WorkerError(Exception):
    """The worker cannot run: no handlers, or the server refused it for good
    (``UNAUTHENTICATED``, ``PERMISSION_DENIED``, ``INVALID_ARGUMENT``)."""


# --- events and stats --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskRef:
    """One attempt of one task, as identified on the wire."""

    task_id: str
    attempt: int
    lease_id: str
    task_type: str


@dataclasses.dataclass(frozen=True)
class Connected:
    """A stream is established (``Welcome`` received)."""

    worker_id: str
    server_version: str


@dataclasses.dataclass(frozen=True)
class Disconnected:
    """The stream broke or the server closed it; the worker reconnects."""

    error: str


@dataclasses.dataclass(frozen=True)
class TaskStarted:
    """A handler started."""

    task: TaskRef


@dataclasses.dataclass(frozen=True)
class TaskFinished:
    """An attempt produced its result. ``outcome`` is ``"succeeded"`` or ``"failed"`` (then
    ``error`` is set); ``started`` says whether its handler ran."""

    task: TaskRef
    outcome: str
    error: TaskError | None
    started: bool


@dataclasses.dataclass(frozen=True)
class ResultAcked:
    """The server answered a result: ``code`` 0 accepted, 9 stale lease, 3 malformed."""

    task: TaskRef
    accepted: bool
    code: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Draining:
    """The worker started draining."""

    reason: str


WorkerEvent = Connected | Disconnected | TaskStarted | TaskFinished | ResultAcked | Draining


@dataclasses.dataclass
class WorkerStats:
    """What a worker did since it was made."""

    #: Handlers started.
    started: int = 0
    #: Results with an output.
    succeeded: int = 0
    #: Results with an error (handler error, bad input, cancelled before it started).
    failed: int = 0
    #: Results the server accepted.
    accepted: int = 0
    #: Results the server rejected (stale lease, malformed); never sent again.
    rejected: int = 0
    #: Streams established.
    connects: int = 0
    #: Leases held now: tasks running or waiting for a slot.
    in_flight: int = 0


# --- handlers ------------------------------------------------------------------------


class _Handler:
    """A registered handler: how to call it and what its input should become."""

    def __init__(self, task_type: str, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"the handler of {task_type!r} is not callable: {fn!r}")
        self.task_type = task_type
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        self.arity, self.input_type = _describe(fn)

    def convert_input(self, value: Any) -> Any:
        if self.input_type is None:
            return value
        return from_jsonable(value, self.input_type)

    def call(self, input: Any, ctx: TaskContext) -> Any:
        if self.arity == 0:
            return self.fn()
        if self.arity == 1:
            return self.fn(input)
        return self.fn(input, ctx)


def _describe(fn: Callable[..., Any]) -> tuple[int, Any]:
    """How many positional arguments ``fn`` takes (0, 1 or 2) and its input annotation."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2, None
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values())
    arity = 2 if varargs else min(len(params), 2)
    if not params:
        return arity, None
    first = params[0]
    annotation = first.annotation
    try:
        target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
        hints = typing.get_type_hints(target)
        annotation = hints.get(first.name, annotation)
    except Exception as e:  # noqa: BLE001 - unresolvable string annotations: no conversion
        if isinstance(annotation, str):
            log.warning(
                "cannot resolve the input annotation %r of handler %s (%s): its input is passed as parsed JSON",
                annotation,
                getattr(fn, "__qualname__", fn),
                e,
            )
            annotation = None
    if annotation is inspect.Parameter.empty or not wants_conversion(annotation):
        return arity, None
    return arity, annotation


# --- the thread pool of sync handlers -------------------------------------------------


class _DaemonPool:
    """Up to ``size`` daemon threads running sync handlers. Daemon threads, so that a handler
    abandoned at the end of a drain does not keep the process alive."""

    def __init__(self, size: int, prefix: str = "braid-task") -> None:
        self._size = max(1, size)
        self._prefix = prefix
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: Items queued or running.
        self._busy = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._busy += 1
            if self._busy > len(self._threads) and len(self._threads) < self._size:
                t = threading.Thread(target=self._work, name=f"{self._prefix}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as e:  # noqa: BLE001 - delivered to the awaiting task
                        future.set_exception(e)
            finally:
                with self._lock:
                    self._busy -= 1

    def shutdown(self) -> None:
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)
            self._threads = []


# --- the worker ------------------------------------------------------------------------


class Worker:
    """A worker serving task handlers; see the module documentation.

    ``endpoint``: ``host:port`` (or ``http://host:port``), default ``$BRAID_ENDPOINT`` or
    ``127.0.0.1:7400``. ``name``: sent in ``Hello`` (default ``<hostname>-<pid>``).
    ``slots``: tasks run at once. ``labels``: sent in ``Hello``. ``drain_timeout``: seconds a
    drain lets running tasks finish before cancelling them. ``connect_timeout``: bound on
    connecting and waiting for ``Welcome``. ``reconnect_backoff``: ``(initial, max)`` seconds,
    full jitter over a ceiling that doubles. ``on_event``: called with every
    :data:`WorkerEvent` on the worker's event loop (keep it quick). ``tracer_provider``: an
    OpenTelemetry tracer provider for the ``handler`` span of each attempt, a child of the run's
    trace (default: the global one; no span at all without ``opentelemetry-api``).
    ``ca_cert``, ``client_cert``, ``client_key``: TLS and mTLS for an ``https://`` endpoint,
    each a PEM file's path or PEM bytes (see :func:`braid.client.channel_credentials`).
    ``token``: the API token (a ``worker`` or ``admin`` token of the tenant whose tasks it
    serves) sent as ``authorization: Bearer TOKEN`` on the stream and when applying workflows;
    default ``$BRAID_TOKEN``, empty = none (see :func:`braid.client.resolve_token`).
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        name: str | None = None,
        slots: int = 4,
        labels: Mapping[str, str] | None = None,
        drain_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        reconnect_backoff: tuple[float, float] = (0.1, 10.0),
        on_event: Callable[[WorkerEvent], None] | None = None,
        metadata: Iterable[tuple[str, str]] | None = None,
        tracer_provider: Any = None,
        ca_cert: PemSource | None = None,
        client_cert: PemSource | None = None,
        client_key: PemSource | None = None,
        token: str | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        # Checked now: a malformed token fails here, not at each reconnect.
        self._token = resolve_token(token)
        # Read (and checked) now: a bad file fails here, not at each reconnect.
        self._credentials = channel_credentials(endpoint, ca_cert, client_cert, client_key)
        self._tls = (ca_cert, client_cert, client_key)
        self.endpoint = endpoint
        self.name = name or default_name()
        self.slots = int(slots)
        self.labels = dict(labels or {})
        self.drain_timeout = float(drain_timeout)
        self.connect_timeout = float(connect_timeout)
        self.reconnect_backoff = (float(reconnect_backoff[0]), float(max(reconnect_backoff)))
        self.on_event = on_event
        self.metadata = list(metadata or [])
        self.tracer_provider = tracer_provider
        self._handlers: dict[str, _Handler] = {}
        self._workflows: list[Workflow] = []
        self._stats = WorkerStats()
        self._runtime: _Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested = False
        self._abort_requested = False
        self._connected = threading.Event()

    def __repr__(self) -> str:
        return f"Worker(name={self.name!r}, task_types={sorted(self._handlers)!r}, slots={self.slots})"

    # --- registration ---------------------------------------------------------------

    def task(self, task_type: str | Callable[..., Any], fn: Callable[..., Any] | None = None) -> Any:
        """Registers a handler for ``task_type``: ``@worker.task("resize")`` on a function,
        ``@worker.task`` (the function's name is the type), or ``worker.task("resize", fn)``."""
        if callable(task_type) and fn is None:
            return self._register(task_type.__name__, task_type)
        if not isinstance(task_type, str):
            raise TypeError(f"task type must be a string (got {task_type!r})")
        if fn is not None:
            return self._register(task_type, fn)

        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            return self._register(task_type, f)

        return decorate

    def _register(self, task_type: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not _valid_task_type(task_type):
            raise ValueError(
                f"invalid task type {task_type!r}: use 1 to 64 ASCII letters, digits, '_', '.' or '-', "
                "starting with a letter or digit"
            )
        if task_type in self._handlers:
            raise ValueError(f"task type {task_type!r} is registered twice")
        self._handlers[task_type] = _Handler(task_type, fn)
        return fn

    @property
    def task_types(self) -> list[str]:
        return sorted(self._handlers)

    def register_workflow(self, workflow: Workflow) -> Workflow:
        """Applies ``workflow`` (PutWorkflow) when the worker starts, and registers the handlers
        attached to its tasks with :meth:`Workflow.step` (unless their type already has one)."""
        self._workflows.append(workflow)
        for t in workflow.tasks:
            if t.handler is not None and t.task_type not in self._handlers:
                self._register(t.task_type, t.handler)
        return workflow

    # --- running ----------------------------------------------------------------------

    def stats(self) -> WorkerStats:
        """A snapshot of the worker's counters."""
        return dataclasses.replace(self._stats)

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Blocks until the first ``Welcome`` arrived (from any thread); False on timeout."""
        return self._connected.wait(timeout)

    def run(self) -> None:
        """Runs until SIGINT or SIGTERM, then drains gracefully; a second signal stops at once."""
        asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> None:
        loop = asyncio.get_running_loop()
        received = 0

        def on_signal(name: str) -> None:
            nonlocal received
            received += 1
            if received == 1:
                log.info("%s received: draining (send it again to stop at once)", name)
                self._request_drain()
            else:
                log.warning("%s received again: stopping at once", name)
                self._request_abort()

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig.name)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not Unix / not main thread
                pass
        try:
            await self.run_async()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def run_async(self, stop: Any = None) -> None:
        """Runs on the current event loop until ``stop`` (an ``asyncio.Event``, a
        ``threading.Event`` or an awaitable) is set/done or :meth:`shutdown` is called, then
        drains gracefully. Raises :class:`WorkerError` when the server refuses the worker."""
        if not self._handlers:
            raise WorkerError("no task handlers registered: add at least one with @worker.task(...)")
        if self._runtime is not None:
            raise WorkerError("this worker is already running")
        loop = asyncio.get_running_loop()
        runtime = _Runtime(self, loop)
        self._runtime, self._loop = runtime, loop
        watcher = asyncio.create_task(_watch_stop(stop, runtime)) if stop is not None else None
        try:
            if self._drain_requested:
                runtime.request_drain()
            if self._abort_requested:
                runtime.request_abort()
            if self._workflows:
                await self._apply_workflows(runtime)
            await runtime.run()
        finally:
            if watcher is not None:
                watcher.cancel()
            self._runtime, self._loop = None, None

    async def _apply_workflows(self, runtime: _Runtime) -> None:
        backoff = _Backoff(*self.reconnect_backoff)
        ca_cert, client_cert, client_key = self._tls
        async with AsyncClient(
            self.endpoint,
            metadata=self.metadata,
            token=self._token or "",
            timeout=self.connect_timeout,
            ca_cert=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
        ) as client:
            for wf in self._workflows:
                while True:
                    try:
                        stored = await client.apply_workflow(wf)
                        log.info(
                            "workflow %s version %d %s",
                            stored.name,
                            stored.version,
                            "created" if stored.created else "unchanged",
                        )
                        break
                    except BraidError as e:
                        retry = e.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                        if not retry or runtime.stop_requested:
                            raise
                        delay = backoff.next_delay()
                        log.warning("cannot apply workflow %s (%s); retrying in %.2fs", wf.name, e, delay)
                        await asyncio.sleep(delay)

    def shutdown(self) -> None:
        """Starts a graceful drain; callable from any thread (also before :meth:`run`)."""
        self._drain_requested = True
        self._call_on_loop("request_drain")

    def abort(self) -> None:
        """Stops at once: cancels every handler and returns without waiting for results."""
        self._abort_requested = True
        self._call_on_loop("request_abort")

    def _request_drain(self) -> None:
        self._drain_requested = True
        if self._runtime is not None:
            self._runtime.request_drain()

    def _request_abort(self) -> None:
        self._abort_requested = True
        if self._runtime is not None:
            self._runtime.request_abort()

    def _call_on_loop(self, method: str) -> None:
        loop, runtime = self._loop, self._runtime
        if loop is None or runtime is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            getattr(runtime, method)()
        else:
            try:
                loop.call_soon_threadsafe(getattr(runtime, method))
            except RuntimeError:  # the loop has closed meanwhile
                pass

    def _emit(self, event: WorkerEvent) -> None:
        if isinstance(event, Connected):
            self._connected.set()
        hook = self.on_event
        if hook is not None:
            try:
                hook(event)
            except Exception:
                log.exception("the on_event hook failed")


async def _watch_stop(stop: Any, runtime: _Runtime) -> None:
    if isinstance(stop, threading.Event):
        while not stop.is_set():
            await asyncio.sleep(0.05)
    elif isinstance(stop, asyncio.Event):
        await stop.wait()
    elif inspect.isawaitable(stop):
        try:
            await stop
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed stop future still means stop
            pass
    else:
        raise TypeError(f"stop must be an asyncio.Event, a threading.Event or an awaitable (got {stop!r})")
    runtime.request_drain()


# --- runtime internals ------------------------------------------------------------------


class _Backoff:
    """Delay n (from 0) is drawn uniformly from [0, min(max, initial * 2^n)]."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.failures = 0

    def ceiling(self) -> float:
        return min(self.maximum, self.initial * (2 ** min(self.failures, 62)))

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        self.failures += 1
        return random.uniform(0.0, ceiling)

    def reset(self) -> None:
        self.failures = 0


LeaseKey = tuple[str, int, str]


def _key(task: TaskRef) -> LeaseKey:
    return (task.task_id, task.attempt, task.lease_id)


@dataclasses.dataclass
class _Held:
    task: TaskRef
    signal: CancelSignal
    job: asyncio.Task[Any] | None = None


@dataclasses.dataclass
class _Pending:
    task: TaskRef
    result: Any  # braid.v1.TaskResult


def _span_attributes(a: Any) -> dict[str, Any]:
    return {
        "braid.task_id": a.task_id,
        "braid.run_id": a.run_id,
        "braid.task_name": a.task_name,
        "braid.task_type": a.task_type,
        "braid.attempt": a.attempt,
    }


@dataclasses.dataclass
class _Finished:
    output_json: str | None
    error: TaskError | None
    started: bool


@dataclasses.dataclass
class _Drain:
    reason: str
    deadline: float
    hard_deadline: float
    cancelled: bool = False
    settled_at: float | None = None


class _LinkError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class _Session:
    """An established stream (its Welcome arrived)."""

    def __init__(self, channel: grpc.aio.Channel, call: Any, outbox: asyncio.Queue[Any], welcome: Any) -> None:
        self.channel = channel
        self.call = call
        self.outbox = outbox
        self.welcome = welcome
        self.worker_id: str = welcome.worker_id
        self.half_closed = False
        self.close_by: float | None = None

    def send(self, **message: Any) -> bool:
        """Queues a ConnectRequest; False once half-closed."""
        if self.half_closed:
            return False
        self.outbox.put_nowait(_pb.worker.ConnectRequest(**message))
        return True

    def half_close(self, now: float) -> None:
        if not self.half_closed:
            self.half_closed = True
            self.close_by = now + CLOSE_WAIT
            self.outbox.put_nowait(None)

    async def close(self) -> None:
        try:
            self.call.cancel()
        except Exception:  # noqa: BLE001
            pass
        try:
            await self.channel.close(grace=None)
        except Exception:  # noqa: BLE001
            pass


def _duration_or(d: Any, present: bool, default: float, field: str) -> float:
    seconds = d.seconds + d.nanos / 1e9 if present else 0.0
    if seconds <= 0:
        log.warning("Welcome has no usable %s; using %.1fs", field, default)
        return default
    return seconds


class _Runtime:
    """The worker's state and event loop for one run."""

    def __init__(self, worker: Worker, loop: asyncio.AbstractEventLoop) -> None:
        self.w = worker
        self.loop = loop
        self.target, self.secure = resolve_endpoint(worker.endpoint)
        self.slots = asyncio.Semaphore(worker.slots)
        self.pool = _DaemonPool(worker.slots)
        self.held: dict[LeaseKey, _Held] = {}
        self.unsent: collections.deque[_Pending] = collections.deque()
        self.unacked: list[_Pending] = []
        self.heartbeat_every = DEFAULT_HEARTBEAT
        self.lease_ttl = DEFAULT_LEASE_TTL
        #: When a heartbeat was last sent on a live stream: leases are good until + lease_ttl.
        self.extended_at: float | None = None
        self.drain: _Drain | None = None
        #: The server ended the stream after our half-close: done.
        self.closed = False
        self.session: _Session | None = None
        self.backoff = _Backoff(*worker.reconnect_backoff)
        self.wake = asyncio.Event()
        self.fatal: WorkerError | None = None
        self.drain_requested = False
        self.abort_requested = False
        self.stats = worker._stats

    @property
    def stop_requested(self) -> bool:
        return self.drain_requested or self.abort_requested

    def request_drain(self) -> None:
        self.drain_requested = True
        self.wake.set()

    def request_abort(self) -> None:
        self.abort_requested = True
        self.wake.set()

    def now(self) -> float:
        return self.loop.time()

    # --- the main loop ----------------------------------------------------------------

    async def run(self) -> None:
        log.info(
            "connecting to %s as %s (types %s, slots %d)", self.target, self.w.name, self.w.task_types, self.w.slots
        )
        link = asyncio.create_task(self._link_loop(), name="braid-worker-link")
        try:
            while True:
                self.wake.clear()
                if self.fatal is not None:
                    self._abort()
                    raise self.fatal
                if self.abort_requested:
                    self._abort()
                    return
                if self.drain_requested and self.drain is None:
                    self._begin_drain("shutdown requested")
                if self._exit_check():
                    return
                timer = self._next_timer()
                timeout = None if timer is None else max(0.0, timer - self.now())
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except TimeoutError:
                    pass
                self._on_timer()
        finally:
            link.cancel()
            try:
                await link
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            session, self.session = self.session, None
            if session is not None:
                await session.close()
            jobs = [h.job for h in self.held.values() if h.job is not None]
            for job in jobs:
                job.cancel()
            if jobs:
                await asyncio.gather(*jobs, return_exceptions=True)
            self.pool.shutdown()
            self.stats.in_flight = 0

    def _wake(self) -> None:
        self.wake.set()

    # --- the link: connecting, serving a stream, reconnecting --------------------------------

    async def _link_loop(self) -> None:
        while not self.closed:
            try:
                session = await self._open()
            except asyncio.CancelledError:
                raise
            except _LinkError as e:
                if e.permanent:
                    log.error("the server refused the worker: %s; stopping", e)
                    self.fatal = WorkerError(f"the server refused the worker: {e}")
                    self._wake()
                    return
                await self._retry_later(str(e))
                continue
            except Exception as e:  # noqa: BLE001 - anything else: retry
                await self._retry_later(f"{type(e).__name__}: {e}")
                continue
            self._on_welcome(session)
            why = await self._serve(session)
            self.session = None
            await session.close()
            if session.half_closed:
                log.info("stream closed after drain")
                self.closed = True
                self._wake()
                return
            self._on_stream_end(why)
            await self._retry_later(why)

    async def _open(self) -> _Session:
        if self.w._credentials is not None:
            channel = grpc.aio.secure_channel(self.target, self.w._credentials, options=CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        hello = _pb.worker.Hello(
            worker_name=self.w.name,
            task_types=self.w.task_types,
            slots=self.w.slots,
            labels=self.w.labels,
            sdk_language="python",
            sdk_version=__version__,
        )
        outbox.put_nowait(_pb.worker.ConnectRequest(hello=hello))

        async def requests() -> Any:
            while True:
                message = await outbox.get()
                if message is None:
                    return
                yield message

        stub = _pb.worker_grpc.WorkerServiceStub(channel)
        call = stub.Connect(requests(), metadata=[*self.w.metadata, *auth_metadata(self.w._token or "")] or None)
        try:
            first = await asyncio.wait_for(call.read(), self.w.connect_timeout)
        except TimeoutError:
            call.cancel()
            await channel.close(grace=None)
            raise _LinkError(f"timed out after {self.w.connect_timeout:g}s waiting for Welcome") from None
        except grpc.aio.AioRpcError as e:
            await channel.close(grace=None)
            code = e.code()
            raise _LinkError(f"the server answered {code.name}: {e.details()}", permanent=code in _PERMANENT) from None
        except BaseException:
            call.cancel()
            await channel.close(grace=None)
            raise
        if first is grpc.aio.EOF or first is None:
            await channel.close(grace=None)
            raise _LinkError("the server closed the stream before Welcome")
        which = first.WhichOneof("message")
        if which != "welcome":
            call.cancel()
            await channel.close(grace=None)
            raise _LinkError(f"protocol violation: expected Welcome first, got {which}")
        return _Session(channel, call, outbox, first.welcome)

    async def _serve(self, session: _Session) -> str:
        heartbeats = asyncio.create_task(self._heartbeats(session), name="braid-worker-heartbeat")
        try:
            while True:
                message = await session.call.read()
                if message is grpc.aio.EOF:
                    return "the server ended the stream"
                self._on_message(session, message)
        except grpc.aio.AioRpcError as e:
            return f"the stream failed: {e.code().name}: {e.details()}"
        except grpc.aio.UsageError as e:  # pragma: no cover - defensive
            return f"the stream failed: {e}"
        finally:
            heartbeats.cancel()

    async def _heartbeats(self, session: _Session) -> None:
        while not session.half_closed:
            await asyncio.sleep(self.heartbeat_every)
            if session.half_closed or self.session is not session:
                return
            self._heartbeat(session)

    async def _retry_later(self, why: str) -> None:
        delay = self.backoff.next_delay()
        log.warning(
            "reconnecting to %s in %.0fms (failure %d): %s", self.target, delay * 1000, self.backoff.failures, why
        )
        await asyncio.sleep(delay)

    def _on_welcome(self, session: _Session) -> None:
        welcome = session.welcome
        self.heartbeat_every = _duration_or(
            welcome.heartbeat_interval, welcome.HasField("heartbeat_interval"), DEFAULT_HEARTBEAT, "heartbeat_interval"
        )
        self.lease_ttl = _duration_or(welcome.lease_ttl, welcome.HasField("lease_ttl"), DEFAULT_LEASE_TTL, "lease_ttl")
        if self.heartbeat_every >= self.lease_ttl:
            log.warning(
                "heartbeat interval %.3fs is not shorter than the lease TTL %.3fs", self.heartbeat_every, self.lease_ttl
            )
        self.backoff.reset()
        self.stats.connects += 1
        log.info(
            "connected: worker_id=%s server_version=%s heartbeat=%.3fs lease_ttl=%.3fs held=%d pending_results=%d",
            welcome.worker_id,
            welcome.server_version,
            self.heartbeat_every,
            self.lease_ttl,
            len(self.held),
            len(self.unsent),
        )
        self.session = session
        self._heartbeat(session)
        if self.drain is not None:
            session.send(drain=_pb.worker.Drain(reason=self.drain.reason))
        self._flush(session)
        self.w._emit(Connected(welcome.worker_id, welcome.server_version))
        self._wake()

    def _on_stream_end(self, why: str) -> None:
        log.warning("disconnected (held=%d, unacked=%d): %s", len(self.held), len(self.unacked), why)
        self.w._emit(Disconnected(why))
        # Results sent on the broken stream and not acknowledged are sent again on the next one.
        for pending in reversed(self.unacked):
            self.unsent.appendleft(pending)
        self.unacked.clear()
        self._wake()

    # --- inbound ----------------------------------------------------------------------------

    def _on_message(self, session: _Session, message: Any) -> None:
        which = message.WhichOneof("message")
        if which == "assignment":
            self._on_assignment(session, message.assignment)
        elif which == "cancel":
            self._on_cancel(message.cancel)
        elif which == "ack":
            self._on_ack(message.ack)
        elif which == "welcome":
            log.warning("ignoring a second Welcome on the stream")
        else:
            log.debug("ignoring an empty ConnectResponse")

    def _on_assignment(self, session: _Session, a: Any) -> None:
        task = TaskRef(a.task_id, a.attempt, a.lease_id, a.task_type)
        key = _key(task)
        if session.half_closed:
            log.warning("assignment %s/%d after the stream was closed: not run; its lease will expire", *key[:2])
            return
        known = key in self.held or any(_key(p.task) == key for p in (*self.unsent, *self.unacked))
        if known:
            log.warning("duplicate assignment of %s attempt %d ignored", a.task_id, a.attempt)
            return
        if not a.lease_id:
            log.warning("assignment %s/%d has no lease id: its result will be refused", a.task_id, a.attempt)
        for (task_id, attempt, _), held in self.held.items():
            if task_id == a.task_id and attempt < a.attempt:
                log.info("a newer attempt %d of %s was assigned: cancelling attempt %d", a.attempt, task_id, attempt)
                held.signal.cancel(CancelReason(CancelReason.SERVER, f"superseded by attempt {a.attempt}"))
        signal_ = CancelSignal(self.loop)
        if self.drain is not None:
            if self.drain.cancelled:
                signal_.cancel(CancelReason(CancelReason.SHUTDOWN))
            else:
                log.info("assignment %s/%d received while draining: running it", a.task_id, a.attempt)
        else:
            log.debug("assignment %s/%d (%s) received", a.task_id, a.attempt, a.task_type)
        held = _Held(task, signal_)
        self.held[key] = held
        job = self.loop.create_task(self._execute(a, task, signal_, session.worker_id), name=f"braid-task-{a.task_id}")
        held.job = job
        job.add_done_callback(lambda j, key=key: self._on_joined(key, j))
        self.stats.in_flight = len(self.held)

    def _on_cancel(self, cancel: Any) -> None:
        found = False
        for (task_id, attempt, lease_id), held in self.held.items():
            if (
                task_id == cancel.task_id
                and (cancel.attempt == 0 or attempt == cancel.attempt)
                and (not cancel.lease_id or lease_id == cancel.lease_id)
            ):
                found = True
                log.info("the server cancelled %s attempt %d: %s", task_id, attempt, cancel.reason)
                held.signal.cancel(CancelReason(CancelReason.SERVER, cancel.reason))
        if not found:
            log.debug("CancelTask for %s/%d, which is not running here", cancel.task_id, cancel.attempt)

    def _on_ack(self, ack: Any) -> None:
        position = next(
            (
                i
                for i, p in enumerate(self.unacked)
                if (p.task.task_id, p.task.attempt, p.task.lease_id) == (ack.task_id, ack.attempt, ack.lease_id)
            ),
            None,
        )
        if position is None:
            position = next(
                (
                    i
                    for i, p in enumerate(self.unacked)
                    if (p.task.task_id, p.task.attempt) == (ack.task_id, ack.attempt)
                ),
                None,
            )
        if position is None:
            log.debug("ResultAck for %s/%d, which has no pending result", ack.task_id, ack.attempt)
            return
        task = self.unacked.pop(position).task
        if ack.accepted:
            self.stats.accepted += 1
            log.debug("result of %s attempt %d accepted", task.task_id, task.attempt)
        else:
            self.stats.rejected += 1
            if ack.code == CODE_FAILED_PRECONDITION:
                log.warning(
                    "result of %s attempt %d (lease %s) rejected: the lease is no longer current (stale); "
                    "it is not sent again: %s",
                    task.task_id,
                    task.attempt,
                    task.lease_id,
                    ack.reason,
                )
            elif ack.code == CODE_INVALID_ARGUMENT:
                log.error(
                    "result of %s attempt %d rejected as malformed; it is not sent again: %s",
                    task.task_id,
                    task.attempt,
                    ack.reason,
                )
            else:
                log.warning(
                    "result of %s attempt %d rejected (code %d); it is not sent again: %s",
                    task.task_id,
                    task.attempt,
                    ack.code,
                    ack.reason,
                )
        self.w._emit(ResultAcked(task, ack.accepted, ack.code, ack.reason))
        self._wake()

    # --- running one assignment ---------------------------------------------------------------

    async def _execute(self, a: Any, task: TaskRef, signal_: CancelSignal, worker_id: str) -> _Finished:
        deadline: datetime | None = None
        deadline_at: float | None = None
        if a.HasField("deadline"):
            deadline = datetime.fromtimestamp(a.deadline.seconds, tz=UTC) + timedelta(
                microseconds=a.deadline.nanos // 1000
            )
            deadline_at = self.now() + (deadline - datetime.now(UTC)).total_seconds()
            if deadline_at <= self.now():
                signal_.cancel(CancelReason(CancelReason.DEADLINE))

        # Wait for a slot, unless cancelled (or past the deadline) first.
        if signal_.cancelled:
            return _not_started_cancelled(signal_.reason)
        acquire = asyncio.ensure_future(self.slots.acquire())
        cancelled = asyncio.ensure_future(signal_.wait())
        try:
            timeout = None if deadline_at is None else max(0.0, deadline_at - self.now())
            await asyncio.wait({acquire, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if not acquire.done():
                acquire.cancel()
        got_slot = acquire.done() and not acquire.cancelled() and acquire.exception() is None
        if not got_slot or signal_.cancelled:
            if got_slot:
                self.slots.release()
            if not signal_.cancelled:
                signal_.cancel(CancelReason(CancelReason.DEADLINE))
            return _not_started_cancelled(signal_.reason)

        try:
            handler = self.w._handlers.get(a.task_type)
            if handler is None:
                error = TaskError(f"this worker has no handler for task type {a.task_type!r}", type="unknown_task_type")
                return _Finished(None, error, False)
            try:
                input_value, deps = _parse_envelope(a.input_json)
            except TaskError as e:
                return _Finished(None, e, False)
            try:
                input_value = handler.convert_input(input_value)
            except Exception as e:  # noqa: BLE001 - any conversion failure is bad input
                error = TaskError(f"input does not fit the handler: {e}", type="bad_input", retryable=False)
                return _Finished(None, error, False)
            info = AttemptInfo(
                task_id=a.task_id,
                run_id=a.run_id,
                workflow_name=a.workflow_name,
                workflow_version=a.workflow_version,
                task_name=a.task_name,
                task_type=a.task_type,
                attempt=a.attempt,
                max_attempts=a.max_attempts,
                lease_id=a.lease_id,
                deadline=deadline,
                trace_context=dict(a.trace_context),
                worker_id=worker_id,
            )
            ctx = TaskContext(info, deps, signal_)
            self.stats.started += 1
            self.w._emit(TaskStarted(task))
            span = _tracing.start_handler_span(_span_attributes(a), info.trace_context, self.w.tracer_provider)
            with _tracing.current(span):
                if handler.is_async:
                    running: asyncio.Future[Any] = asyncio.ensure_future(handler.call(input_value, ctx))
                else:
                    context = contextvars.copy_context()
                    running = asyncio.wrap_future(self.pool.submit(context.run, handler.call, input_value, ctx))
            try:
                finished = await self._outcome(running, a, signal_, deadline_at)
            except BaseException:
                _tracing.end_handler_span(span, "the worker stopped")
                raise
            _tracing.end_handler_span(span, None if finished.error is None else finished.error.message)
            return finished
        finally:
            self.slots.release()

    async def _outcome(
        self, running: asyncio.Future[Any], a: Any, signal_: CancelSignal, deadline_at: float | None
    ) -> _Finished:
        """Waits for the handler (cancelling it at its deadline) and makes its result."""
        deadline_passed = False
        try:
            while True:
                timeout = None
                if deadline_at is not None and not deadline_passed:
                    timeout = max(0.0, deadline_at - self.now())
                done, _ = await asyncio.wait({running}, timeout=timeout)
                if done:
                    break
                deadline_passed = True
                log.info("deadline of %s attempt %d passed: cancelling the handler", a.task_id, a.attempt)
                signal_.cancel(CancelReason(CancelReason.DEADLINE))
        except asyncio.CancelledError:
            running.cancel()  # the worker is stopping at once
            raise
        try:
            output = running.result()
            if inspect.isawaitable(output):  # a sync-looking callable that returned a coroutine
                output = await output
        except TaskError as e:
            return _Finished(None, e, True)
        except asyncio.CancelledError:
            if (current := asyncio.current_task()) is not None and current.cancelling():
                raise
            return _Finished(None, TaskError("the handler was cancelled", type="cancelled"), True)
        except Exception as e:  # noqa: BLE001 - every handler failure is reported
            return _Finished(None, TaskError.from_exception(e), True)
        try:
            return _Finished(dumps(output), None, True)
        except (TypeError, ValueError) as e:
            error = TaskError(f"output cannot be serialized as JSON: {e}", type="bad_output", retryable=False)
            return _Finished(None, error, True)

    def _on_joined(self, key: LeaseKey, job: asyncio.Task[Any]) -> None:
        held = self.held.pop(key, None)
        if held is None:
            return
        self.stats.in_flight = len(self.held)
        if job.cancelled():
            return  # stopped at once: nothing is reported
        if job.exception() is not None:
            exc = job.exception()
            log.error("the task runner of %s/%d failed: %r", key[0], key[1], exc)
            finished = _Finished(None, TaskError(f"the task runner failed: {exc!r}", type="internal"), False)
        else:
            finished = job.result()
        task = held.task
        result = _pb.worker.TaskResult(task_id=task.task_id, attempt=task.attempt, lease_id=task.lease_id)
        if finished.error is None:
            self.stats.succeeded += 1
            result.output_json = finished.output_json or "null"
            log.debug("%s attempt %d succeeded", task.task_id, task.attempt)
            self.w._emit(TaskFinished(task, "succeeded", None, finished.started))
        else:
            self.stats.failed += 1
            result.error.CopyFrom(finished.error.to_proto())
            log.info("%s attempt %d failed: %s", task.task_id, task.attempt, finished.error)
            self.w._emit(TaskFinished(task, "failed", finished.error, finished.started))
        self.unsent.append(_Pending(task, result))
        if self.session is not None:
            self._flush(self.session)
        self._wake()

    # --- outbound ------------------------------------------------------------------------------

    def _heartbeat(self, session: _Session) -> None:
        """Lists every lease held (running, waiting for a slot, or with a result not yet sent on
        this stream); sending it on a live stream extends them all."""
        keys = list(self.held) + [_key(p.task) for p in self.unsent]
        leases = [_pb.worker.LeaseRef(task_id=t, attempt=n, lease_id=lease) for (t, n, lease) in keys]
        if session.send(heartbeat=_pb.worker.Heartbeat(leases=leases)):
            self.extended_at = self.now()

    def _flush(self, session: _Session) -> None:
        """Sends every unsent result, oldest first; they then wait for their acks in unacked."""
        while self.unsent:
            pending = self.unsent[0]
            if not session.send(result=pending.result):
                break
            self.unsent.popleft()
            self.unacked.append(pending)

    # --- timers, drain, exit ----------------------------------------------------------------------

    def _begin_drain(self, reason: str) -> None:
        if self.drain is not None:
            return
        now = self.now()
        timeout = self.w.drain_timeout
        self.drain = _Drain(reason, now + timeout, now + timeout + CANCEL_GRACE)
        log.info(
            "draining (%s): asking for no more work, finishing %d held tasks (timeout %.1fs)",
            reason,
            len(self.held),
            timeout,
        )
        if self.session is not None:
            self.session.send(drain=_pb.worker.Drain(reason=reason))
        self.w._emit(Draining(reason))

    def _next_timer(self) -> float | None:
        candidates = []
        if self.session is None and self.held and self.extended_at is not None:
            candidates.append(self.extended_at + self.lease_ttl)
        if self.drain is not None:
            if not self.drain.cancelled:
                candidates.append(self.drain.deadline)
            candidates.append(self.drain.hard_deadline)
            if self.drain.settled_at is not None:
                candidates.append(self.drain.settled_at + ACK_WAIT)
        if self.session is not None and self.session.close_by is not None:
            candidates.append(self.session.close_by)
        return min(candidates) if candidates else None

    def _on_timer(self) -> None:
        now = self.now()
        lease_gone = self.extended_at is not None and now >= self.extended_at + self.lease_ttl
        if self.session is None and lease_gone and self.held:
            log.warning(
                "no heartbeat reached the server for a whole lease TTL (%.1fs): the %d leases have probably "
                "expired; cancelling their handlers",
                self.lease_ttl,
                len(self.held),
            )
            for held in self.held.values():
                held.signal.cancel(CancelReason(CancelReason.LEASE_LOST))
            self.extended_at = None
        drain = self.drain
        if drain is not None and not drain.cancelled and now >= drain.deadline:
            drain.cancelled = True
            if self.held:
                log.warning("drain timeout passed: cancelling the %d tasks still running", len(self.held))
            for held in self.held.values():
                held.signal.cancel(CancelReason(CancelReason.SHUTDOWN))

    def _exit_check(self) -> bool:
        if self.closed:
            return True
        drain = self.drain
        if drain is None:
            return False
        now = self.now()
        if now >= drain.hard_deadline:
            results = len(self.unsent) + len(self.unacked)
            if self.held or results:
                log.error(
                    "drain deadline passed: abandoning %d tasks and %d results (their leases will expire)",
                    len(self.held),
                    results,
                )
            self._abort()
            return True
        if self.held or self.unsent:
            drain.settled_at = None
            return False
        session = self.session
        if session is None:
            return True  # nothing to deliver and no stream: done
        if not session.half_closed:
            if drain.settled_at is None:
                drain.settled_at = now
            if not self.unacked or now >= drain.settled_at + ACK_WAIT:
                if self.unacked:
                    log.warning("no ack for %d results; closing anyway", len(self.unacked))
                log.info("drained: closing the stream")
                session.half_close(now)
            return False
        if session.close_by is not None and now >= session.close_by:
            log.warning("the server did not end the stream after the drain; leaving")
            return True
        return False

    def _abort(self) -> None:
        if self.held:
            log.warning("stopping at once: abandoning %d running tasks", len(self.held))
        for held in self.held.values():
            held.signal.cancel(CancelReason(CancelReason.SHUTDOWN))
            if held.job is not None:
                held.job.cancel()


def _not_started_cancelled(reason: CancelReason | None) -> _Finished:
    reason = reason or CancelReason(CancelReason.SHUTDOWN)
    error = TaskError(f"not started: {reason}", type=reason.error_type, details={"started": False})
    return _Finished(None, error, False)


def _parse_envelope(text: str) -> tuple[Any, dict[str, Any]]:
    """``{"input": ..., "deps": {...}}``: blank text is an empty envelope; a missing ``input`` is
    None and a missing or null ``deps`` is empty. Anything else is a non-retryable bad_input."""
    if not text or not text.strip():
        return None, {}

    def bad(why: str) -> TaskError:
        return TaskError(f"input_json is not a task envelope: {why}", type="bad_input", retryable=False)

    try:
        doc = json.loads(text)
    except ValueError as e:
        raise bad(str(e)) from None
    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    deps = doc.get("deps")
    if deps is None:
        deps = {}
    if not isinstance(deps, dict):
        raise bad('"deps" is not an object')
    return doc.get("input"), deps


__all__ = [
    "Connected",
    "Disconnected",
    "Draining",
    "ResultAcked",
    "TaskFinished",
    "TaskRef",
    "TaskStarted",
    "Worker",
    "WorkerError",
    "WorkerEvent",
    "WorkerStats",
    "default_name",
]
