"""`Client` (sync) and `AsyncClient` (asyncio): authoring, runs and operations over gRPC.

Every method raises a :class:`braid.BraidError` subclass when the server answers with an error
status (``InvalidArgumentError`` carries the ``(path, reason)`` violations).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

import grpc

from braid import _pb
from braid._convert import dumps
from braid.errors import BraidError, Violation, from_rpc_error
from braid.models import (
    DeadLetter,
    Page,
    Priority,
    QueueInfo,
    RedriveResult,
    Run,
    RunEvent,
    RunState,
    StoredWorkflow,
    Triggered,
    ValidationResult,
    WorkerInfo,
    WorkflowSummary,
    timestamp,
)
from braid.workflow import definition_proto

DEFAULT_ENDPOINT = "127.0.0.1:7400"

#: What ``trigger(priority=...)`` takes: a :class:`braid.Priority` or its value.
PriorityLike = Priority | Literal["high", "normal", "low"]

#: HTTP/2 keepalive so a silently dead connection is noticed (matches the Rust SDK).
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def resolve_endpoint(endpoint: str | None) -> tuple[str, bool]:
    """``(grpc target, secure)`` from ``host:port``, ``http://host:port`` or ``https://host:port``;
    ``None`` takes ``$BRAID_ENDPOINT`` or ``127.0.0.1:7400``."""
    endpoint = endpoint or os.environ.get("BRAID_ENDPOINT") or DEFAULT_ENDPOINT
    endpoint = endpoint.strip()
    secure = False
    if endpoint.startswith("https://"):
        endpoint, secure = endpoint[len("https://") :], True
    elif endpoint.startswith("http://"):
        endpoint = endpoint[len("http://") :]
    return endpoint.rstrip("/"), secure


def resolve_token(token: str | None) -> str | None:
    """The API token to send: ``token``, or ``$BRAID_TOKEN`` when it is ``None``; empty = none.

    Surrounding whitespace is dropped (a token read from a file keeps its newline); a token with
    whitespace, control or non-ASCII characters inside is a ``ValueError`` naming the problem
    (a token is ``brd_`` and 43 URL-safe base64 characters)."""
    source = "token"
    if token is None:
        token, source = os.environ.get("BRAID_TOKEN", ""), "$BRAID_TOKEN"
    token = token.strip()
    if not token:
        return None
    bad = next((c for c in token if not ("!" <= c <= "~")), None)
    if bad is not None:
        what = "whitespace" if bad.isspace() else "a control character" if bad.isascii() else "a non-ASCII character"
        hint = " (pass the token alone, without 'Bearer ')" if token.lower().startswith("bearer ") else ""
        raise ValueError(
            f"invalid {source}: it contains {what} ({bad!r}); a token is `brd_` and 43 URL-safe base64 characters"
            + hint
        )
    return token


def auth_metadata(token: str | None) -> list[tuple[str, str]]:
    """``[("authorization", "Bearer TOKEN")]`` for the token :func:`resolve_token` gives, or ``[]``."""
    resolved = resolve_token(token)
    return [("authorization", f"Bearer {resolved}")] if resolved else []


#: A PEM file's path, or the PEM itself as bytes.
PemSource = str | os.PathLike[str] | bytes


def _read_pem(option: str, source: PemSource, kind: Literal["certificate", "private key"]) -> bytes:
    if isinstance(source, bytes):
        data, where = source, f"{option} (bytes)"
    else:
        where = f"{option} {os.fspath(source)}"
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ValueError(f"{where}: cannot read: {e.strerror or e}") from None
    marker = b"-----BEGIN CERTIFICATE-----" if kind == "certificate" else b"PRIVATE KEY-----"
    if marker not in data:
        raise ValueError(f"{where}: holds no PEM {kind}")
    return data


def channel_credentials(
    endpoint: str | None,
    ca_cert: PemSource | None = None,
    client_cert: PemSource | None = None,
    client_key: PemSource | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials for an ``https://`` endpoint (``None`` for a plaintext one).

    ``ca_cert``: the CA the server's certificate must chain to (default: the system roots).
    ``client_cert`` and ``client_key``: a client certificate and its key, for a server that
    requires one (mTLS). Each is a PEM file's path or the PEM as bytes. TLS options with a
    plaintext endpoint are a ``ValueError`` (TLS is used only with ``https://``)."""
    _, secure = resolve_endpoint(endpoint)
    given = [n for n, v in (("ca_cert", ca_cert), ("client_cert", client_cert), ("client_key", client_key)) if v]
    if not secure:
        if given:
            shown = endpoint or os.environ.get("BRAID_ENDPOINT") or DEFAULT_ENDPOINT
            raise ValueError(f"{', '.join(given)} set but the endpoint {shown!r} is not https://")
        return None
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key go together")
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem("ca_cert", ca_cert, "certificate") if ca_cert else None,
        private_key=_read_pem("client_key", client_key, "private key") if client_key else None,
        certificate_chain=_read_pem("client_cert", client_cert, "certificate") if client_cert else None,
    )


def _states(states: Iterable[RunState | str] | None) -> list[int]:
    out = []
    for s in states or ():
        state = s if isinstance(s, RunState) else RunState(str(s).lower())
        out.append(state.to_proto())
    return out


def _page(page_size: int, page_token: str) -> _pb.common.PageRequest:
    return _pb.common.PageRequest(page_size=page_size, page_token=page_token)


def _dead_letter_filter(
    workflow: str | None,
    task_name: str | None,
    error_type: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> _pb.admin.DeadLetterFilter:
    f = _pb.admin.DeadLetterFilter(workflow_name=workflow or "", task_name=task_name or "", error_type=error_type or "")
    if created_after is not None:
        f.created_after.CopyFrom(timestamp(created_after))
    if created_before is not None:
        f.created_before.CopyFrom(timestamp(created_before))
    return f


class _Requests:
    """Request builders and response readers shared by both clients."""

    @staticmethod
    def put(definition: Any) -> _pb.workflow.PutWorkflowRequest:
        return _pb.workflow.PutWorkflowRequest(definition=definition_proto(definition))

    @staticmethod
    def validate(definition: Any) -> _pb.workflow.ValidateWorkflowRequest:
        return _pb.workflow.ValidateWorkflowRequest(definition=definition_proto(definition))

    @staticmethod
    def validated(resp: _pb.workflow.ValidateWorkflowResponse) -> ValidationResult:
        return ValidationResult(resp.valid, [Violation(e.path, e.reason) for e in resp.errors])

    @staticmethod
    def trigger(
        workflow: str,
        input: Any,
        idempotency_key: str | None,
        version: int | None,
        input_json: str | None,
        priority: PriorityLike | None = None,
        concurrency_key: str | None = None,
    ) -> _pb.run.TriggerRunRequest:
        # Checked before the input is encoded, so that a bad priority is the error reported.
        priority_proto = _pb.common.PRIORITY_UNSPECIFIED if priority is None else Priority.parse(priority).to_proto()
        if input_json is None:
            input_json = "" if input is None else dumps(input)
        return _pb.run.TriggerRunRequest(
            workflow_name=workflow,
            workflow_version=version or 0,
            input_json=input_json,
            idempotency_key=idempotency_key or "",
            priority=priority_proto,
            concurrency_key=concurrency_key or "",
        )

    @staticmethod
    def list_runs(
        workflow: str | None,
        states: Iterable[RunState | str] | None,
        created_after: datetime | None,
        created_before: datetime | None,
        page_size: int,
        page_token: str,
    ) -> _pb.run.ListRunsRequest:
        req = _pb.run.ListRunsRequest(
            workflow_name=workflow or "", states=_states(states), page=_page(page_size, page_token)
        )
        if created_after is not None:
            req.created_after.CopyFrom(timestamp(created_after))
        if created_before is not None:
            req.created_before.CopyFrom(timestamp(created_before))
        return req

    @staticmethod
    def redrive(
        ids: Iterable[str] | None,
        all: bool,
        workflow: str | None,
        task_name: str | None,
        error_type: str | None,
        created_after: datetime | None,
        created_before: datetime | None,
    ) -> _pb.admin.RedriveDeadLettersRequest:
        ids = list(ids or [])
        filtered = any(x is not None for x in (workflow, task_name, error_type, created_after, created_before))
        if ids and (all or filtered):
            raise ValueError("redrive takes either ids or a filter (all=True / workflow=...), not both")
        if not ids and not all and not filtered:
            raise ValueError("redrive needs ids, a filter (workflow=, task_name=, error_type=, ...) or all=True")
        req = _pb.admin.RedriveDeadLettersRequest(ids=ids)
        if not ids:
            req.filter.CopyFrom(_dead_letter_filter(workflow, task_name, error_type, created_after, created_before))
        return req


class Client:
    """A synchronous client of one control plane.

    ``endpoint`` is ``host:port`` (or ``http://host:port``, or ``https://host:port`` for TLS);
    default ``$BRAID_ENDPOINT`` or ``127.0.0.1:7400``. ``timeout`` bounds each unary call
    (seconds; ``None`` = no bound). ``ca_cert``, ``client_cert``, ``client_key``: TLS and mTLS
    for an ``https://`` endpoint (see :func:`channel_credentials`).
    ``token``: the API token sent as ``authorization: Bearer TOKEN`` on every call (default
    ``$BRAID_TOKEN``; empty = none; see :func:`resolve_token`).
    Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        timeout: float | None = 30.0,
        metadata: Iterable[tuple[str, str]] | None = None,
        channel: grpc.Channel | None = None,
        ca_cert: PemSource | None = None,
        client_cert: PemSource | None = None,
        client_key: PemSource | None = None,
        token: str | None = None,
    ) -> None:
        target, _ = resolve_endpoint(endpoint)
        credentials = channel_credentials(endpoint, ca_cert, client_cert, client_key)
        self.endpoint = target
        self.timeout = timeout
        self._metadata = [*(metadata or []), *auth_metadata(token)]
        if channel is None:
            if credentials is not None:
                channel = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._owns_channel = True
        else:
            self._owns_channel = False
        self._channel = channel
        self._workflows = _pb.workflow_grpc.WorkflowServiceStub(channel)
        self._runs = _pb.run_grpc.RunServiceStub(channel)
        self._admin = _pb.admin_grpc.AdminServiceStub(channel)

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    # --- workflows -------------------------------------------------------------

    def apply_workflow(self, definition: Any) -> StoredWorkflow:
        """Validates and stores ``definition`` (a :class:`braid.Workflow`, a dict in file form, or
        a ``WorkflowDefinition``) as the next version; the same content as the latest version
        returns it with ``created=False``."""
        resp = self._call(self._workflows.PutWorkflow, _Requests.put(definition))
        return StoredWorkflow.from_proto(resp.workflow, resp.created)

    def validate_workflow(self, definition: Any) -> ValidationResult:
        """Validates without storing; problems come back in ``errors``, not as an exception."""
        return _Requests.validated(self._call(self._workflows.ValidateWorkflow, _Requests.validate(definition)))

    def get_workflow(self, name: str, version: int = 0) -> StoredWorkflow:
        resp = self._call(self._workflows.GetWorkflow, _pb.workflow.GetWorkflowRequest(name=name, version=version))
        return StoredWorkflow.from_proto(resp.workflow)

    def list_workflows(self, *, page_size: int = 0, page_token: str = "") -> Page[WorkflowSummary]:
        resp = self._call(
            self._workflows.ListWorkflows, _pb.workflow.ListWorkflowsRequest(page=_page(page_size, page_token))
        )
        return Page([WorkflowSummary.from_proto(w) for w in resp.workflows], resp.next_page_token)

    # --- runs ----------------------------------------------------------------------

    def trigger(
        self,
        workflow: str,
        input: Any = None,
        idempotency_key: str | None = None,
        version: int | None = None,
        *,
        input_json: str | None = None,
        priority: PriorityLike | None = None,
        concurrency_key: str | None = None,
    ) -> Triggered:
        """Starts a run of ``workflow`` (latest version unless ``version``) with ``input`` (any
        JSON-able value, dataclass or pydantic model; or raw ``input_json`` text).
        ``priority`` is ``"high"``, ``"normal"`` (the default) or ``"low"`` (or a
        :class:`braid.Priority`; anything else raises ``ValueError`` before any call).
        Runs sharing a ``concurrency_key`` (at most 128 bytes) count against the workflow's
        ``max_per_key``; the rest wait in the queued state.
        Returns ``(run, created)``; ``created`` is False when ``idempotency_key`` matched a run."""
        req = _Requests.trigger(workflow, input, idempotency_key, version, input_json, priority, concurrency_key)
        resp = self._call(self._runs.TriggerRun, req)
        return Triggered(Run.from_proto(resp.run), resp.created)

    def get_run(self, run_id: str) -> Run:
        """The run with its tasks and their attempts."""
        return Run.from_proto(self._call(self._runs.GetRun, _pb.run.GetRunRequest(run_id=run_id)).run)

    def list_runs(
        self,
        workflow: str | None = None,
        *,
        states: Iterable[RunState | str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Run]:
        """One page of runs, newest first (without tasks)."""
        req = _Requests.list_runs(workflow, states, created_after, created_before, page_size, page_token)
        resp = self._call(self._runs.ListRuns, req)
        return Page([Run.from_proto(r) for r in resp.runs], resp.next_page_token)

    def cancel_run(self, run_id: str, reason: str = "") -> Run:
        """Cancels pending and ready tasks and tells workers holding leases to stop."""
        resp = self._call(self._runs.CancelRun, _pb.run.CancelRunRequest(run_id=run_id, reason=reason))
        return Run.from_proto(resp.run)

    def watch_run(self, run_id: str, after_sequence: int = 0, *, timeout: float | None = None) -> EventStream:
        """The run's events after ``after_sequence``, then live ones until the run ends.

        Returns an iterator of :class:`RunEvent`; ``timeout`` (seconds) bounds the whole watch
        (then :class:`braid.DeadlineExceededError`). ``stream.cancel()`` stops it early."""
        call = self._runs.WatchRun(
            _pb.run.WatchRunRequest(run_id=run_id, after_sequence=after_sequence),
            timeout=timeout,
            metadata=self._metadata,
        )
        return EventStream(call)

    def wait_run(self, run_id: str, timeout: float | None = None) -> Run:
        """Waits until the run is terminal (by watching it) and returns it.

        Raises ``TimeoutError`` after ``timeout`` seconds."""
        try:
            for _ in self.watch_run(run_id, timeout=timeout):
                pass
        except BraidError as e:
            if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(f"run {run_id} did not finish within {timeout}s") from None
            raise
        run = self.get_run(run_id)
        if not run.state.terminal:  # the watch ended without the run ending (server stopping)
            raise BraidError(f"the watch of run {run_id} ended while it is {run.state.value}")
        return run

    # --- operations ------------------------------------------------------------------

    def list_dead_letters(
        self,
        workflow: str | None = None,
        *,
        task_name: str | None = None,
        error_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[DeadLetter]:
        req = _pb.admin.ListDeadLettersRequest(
            filter=_dead_letter_filter(workflow, task_name, error_type, created_after, created_before),
            page=_page(page_size, page_token),
        )
        resp = self._call(self._admin.ListDeadLetters, req)
        return Page([DeadLetter.from_proto(d) for d in resp.dead_letters], resp.next_page_token)

    def redrive(
        self,
        ids: Iterable[str] | None = None,
        *,
        all: bool = False,
        workflow: str | None = None,
        task_name: str | None = None,
        error_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> RedriveResult:
        """Makes dead-lettered tasks ready again with fresh attempts: the given dead-letter
        ``ids``, or every dead letter matching the filter (``all=True`` with no filter: all)."""
        req = _Requests.redrive(ids, all, workflow, task_name, error_type, created_after, created_before)
        resp = self._call(self._admin.RedriveDeadLetters, req)
        return RedriveResult(resp.redriven, list(resp.task_ids))

    def list_workers(self, *, page_size: int = 0, page_token: str = "") -> Page[WorkerInfo]:
        resp = self._call(self._admin.ListWorkers, _pb.admin.ListWorkersRequest(page=_page(page_size, page_token)))
        return Page([WorkerInfo.from_proto(w) for w in resp.workers], resp.next_page_token)

    def list_queues(self) -> list[QueueInfo]:
        resp = self._call(self._admin.ListQueues, _pb.admin.ListQueuesRequest())
        return [QueueInfo.from_proto(q) for q in resp.queues]


class EventStream:
    """An iterator of :class:`RunEvent` over a ``WatchRun`` stream; ``cancel()`` ends it."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> Iterator[RunEvent]:
        return self

    def __next__(self) -> RunEvent:
        try:
            resp = next(self._call)
        except grpc.RpcError as e:
            if self._cancelled and e.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(e) from None
        return RunEvent.from_proto(resp.event)

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class AsyncClient:
    """The asyncio twin of :class:`Client` (``grpc.aio``); the same methods, awaitable.

    ``watch_run`` is an async iterator. Use ``async with`` or ``await client.close()``.
    ``token``: as for :class:`Client` (default ``$BRAID_TOKEN``)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        timeout: float | None = 30.0,
        metadata: Iterable[tuple[str, str]] | None = None,
        channel: grpc.aio.Channel | None = None,
        ca_cert: PemSource | None = None,
        client_cert: PemSource | None = None,
        client_key: PemSource | None = None,
        token: str | None = None,
    ) -> None:
        target, _ = resolve_endpoint(endpoint)
        credentials = channel_credentials(endpoint, ca_cert, client_cert, client_key)
        self.endpoint = target
        self.timeout = timeout
        self._metadata = [*(metadata or []), *auth_metadata(token)]
        if channel is None:
            if credentials is not None:
                channel = grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            else:
                channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._owns_channel = True
        else:
            self._owns_channel = False
        self._channel = channel
        self._workflows = _pb.workflow_grpc.WorkflowServiceStub(channel)
        self._runs = _pb.run_grpc.RunServiceStub(channel)
        self._admin = _pb.admin_grpc.AdminServiceStub(channel)

    async def close(self) -> None:
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(
                request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e) from None

    async def apply_workflow(self, definition: Any) -> StoredWorkflow:
        resp = await self._call(self._workflows.PutWorkflow, _Requests.put(definition))
        return StoredWorkflow.from_proto(resp.workflow, resp.created)

    async def validate_workflow(self, definition: Any) -> ValidationResult:
        return _Requests.validated(await self._call(self._workflows.ValidateWorkflow, _Requests.validate(definition)))

    async def get_workflow(self, name: str, version: int = 0) -> StoredWorkflow:
        req = _pb.workflow.GetWorkflowRequest(name=name, version=version)
        return StoredWorkflow.from_proto((await self._call(self._workflows.GetWorkflow, req)).workflow)

    async def list_workflows(self, *, page_size: int = 0, page_token: str = "") -> Page[WorkflowSummary]:
        req = _pb.workflow.ListWorkflowsRequest(page=_page(page_size, page_token))
        resp = await self._call(self._workflows.ListWorkflows, req)
        return Page([WorkflowSummary.from_proto(w) for w in resp.workflows], resp.next_page_token)

    async def trigger(
        self,
        workflow: str,
        input: Any = None,
        idempotency_key: str | None = None,
        version: int | None = None,
        *,
        input_json: str | None = None,
        priority: PriorityLike | None = None,
        concurrency_key: str | None = None,
    ) -> Triggered:
        req = _Requests.trigger(workflow, input, idempotency_key, version, input_json, priority, concurrency_key)
        resp = await self._call(self._runs.TriggerRun, req)
        return Triggered(Run.from_proto(resp.run), resp.created)

    async def get_run(self, run_id: str) -> Run:
        return Run.from_proto((await self._call(self._runs.GetRun, _pb.run.GetRunRequest(run_id=run_id))).run)

    async def list_runs(
        self,
        workflow: str | None = None,
        *,
        states: Iterable[RunState | str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Run]:
        req = _Requests.list_runs(workflow, states, created_after, created_before, page_size, page_token)
        resp = await self._call(self._runs.ListRuns, req)
        return Page([Run.from_proto(r) for r in resp.runs], resp.next_page_token)

    async def cancel_run(self, run_id: str, reason: str = "") -> Run:
        req = _pb.run.CancelRunRequest(run_id=run_id, reason=reason)
        return Run.from_proto((await self._call(self._runs.CancelRun, req)).run)

    async def watch_run(
        self, run_id: str, after_sequence: int = 0, *, timeout: float | None = None
    ) -> AsyncIterator[RunEvent]:
        call = self._runs.WatchRun(
            _pb.run.WatchRunRequest(run_id=run_id, after_sequence=after_sequence),
            timeout=timeout,
            metadata=self._metadata,
        )
        try:
            async for resp in call:
                yield RunEvent.from_proto(resp.event)
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e) from None
        finally:
            call.cancel()

    async def wait_run(self, run_id: str, timeout: float | None = None) -> Run:
        try:
            async for _ in self.watch_run(run_id, timeout=timeout):
                pass
        except BraidError as e:
            if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(f"run {run_id} did not finish within {timeout}s") from None
            raise
        run = await self.get_run(run_id)
        if not run.state.terminal:
            raise BraidError(f"the watch of run {run_id} ended while it is {run.state.value}")
        return run

    async def list_dead_letters(
        self,
        workflow: str | None = None,
        *,
        task_name: str | None = None,
        error_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[DeadLetter]:
        req = _pb.admin.ListDeadLettersRequest(
            filter=_dead_letter_filter(workflow, task_name, error_type, created_after, created_before),
            page=_page(page_size, page_token),
        )
        resp = await self._call(self._admin.ListDeadLetters, req)
        return Page([DeadLetter.from_proto(d) for d in resp.dead_letters], resp.next_page_token)

    async def redrive(
        self,
        ids: Iterable[str] | None = None,
        *,
        all: bool = False,
        workflow: str | None = None,
        task_name: str | None = None,
        error_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> RedriveResult:
        req = _Requests.redrive(ids, all, workflow, task_name, error_type, created_after, created_before)
        resp = await self._call(self._admin.RedriveDeadLetters, req)
        return RedriveResult(resp.redriven, list(resp.task_ids))

    async def list_workers(self, *, page_size: int = 0, page_token: str = "") -> Page[WorkerInfo]:
        req = _pb.admin.ListWorkersRequest(page=_page(page_size, page_token))
        resp = await self._call(self._admin.ListWorkers, req)
        return Page([WorkerInfo.from_proto(w) for w in resp.workers], resp.next_page_token)

    async def list_queues(self) -> list[QueueInfo]:
        resp = await self._call(self._admin.ListQueues, _pb.admin.ListQueuesRequest())
        return [QueueInfo.from_proto(q) for q in resp.queues]
