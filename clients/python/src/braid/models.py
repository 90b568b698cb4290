"""What the client returns: plain dataclasses built from the braid.v1 messages.

Every object keeps the message it came from in ``raw``. ``*_json`` fields are kept as sent;
the matching property without the suffix (``input``, ``output``, ``detail``, ...) parses them
(``None`` when empty).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from google.protobuf import timestamp_pb2

from braid import _pb
from braid.durations import to_timedelta
from braid.workflow import Workflow

T = TypeVar("T")


def _json(text: str) -> Any:
    return json.loads(text) if text and text.strip() else None


def _ts(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, name)
    return datetime.fromtimestamp(ts.seconds, tz=UTC) + timedelta(microseconds=ts.nanos // 1000)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp from an aware datetime (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


class RunState(str, enum.Enum):
    UNSPECIFIED = "unspecified"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)

    @classmethod
    def from_proto(cls, value: int) -> RunState:
        name = _pb.common.RunState.Name(value).removeprefix("RUN_STATE_") if value in _RUN_STATES else "UNSPECIFIED"
        return cls[name]

    def to_proto(self) -> int:
        return _pb.common.RunState.Value(f"RUN_STATE_{self.name}")


class TaskState(str, enum.Enum):
    UNSPECIFIED = "unspecified"
    PENDING = "pending"
    READY = "ready"
    LEASED = "leased"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @classmethod
    def from_proto(cls, value: int) -> TaskState:
        name = _pb.common.TaskState.Name(value).removeprefix("TASK_STATE_") if value in _TASK_STATES else "UNSPECIFIED"
        return cls[name]


class Priority(str, enum.Enum):
    """How urgently a run's ready tasks are dispatched (higher first; low never starves).

    Triggers take a member or its value (``"high"``, ``"normal"``, ``"low"``)."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @classmethod
    def parse(cls, value: Priority | str) -> Priority:
        """``value`` as a member; ``ValueError`` naming the accepted values when it is none."""
        if isinstance(value, Priority):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            accepted = ", ".join(repr(p.value) for p in cls)
            raise ValueError(f"unknown priority {value!r}: expected one of {accepted}") from None

    @classmethod
    def from_proto(cls, value: int) -> Priority:
        """Unspecified (and any value this client does not know) is normal, as on the server."""
        if value == _pb.common.PRIORITY_HIGH:
            return cls.HIGH
        if value == _pb.common.PRIORITY_LOW:
            return cls.LOW
        return cls.NORMAL

    def to_proto(self) -> int:
        return _pb.common.Priority.Value(f"PRIORITY_{self.name}")


_RUN_STATES = set(_pb.common.RunState.values())
_TASK_STATES = set(_pb.common.TaskState.values())


@dataclass
class ErrorInfo:
    """A task failure as recorded by the server (``braid.v1.TaskError``)."""

    message: str
    type: str
    retryable: bool
    details_json: str = ""

    @property
    def details(self) -> Any:
        return _json(self.details_json)

    @classmethod
    def from_proto(cls, p: _pb.common.TaskError) -> ErrorInfo:
        return cls(p.message, p.type, p.retryable, p.details_json)


def _error(message: Any, name: str) -> ErrorInfo | None:
    return ErrorInfo.from_proto(getattr(message, name)) if message.HasField(name) else None


@dataclass
class TaskAttempt:
    attempt: int
    lease_id: str
    worker_id: str
    started_at: datetime | None
    finished_at: datetime | None
    #: "succeeded", "failed", "lease_expired", "cancelled", or "" while running.
    outcome: str
    error: ErrorInfo | None

    @classmethod
    def from_proto(cls, p: _pb.common.TaskAttempt) -> TaskAttempt:
        return cls(
            p.attempt,
            p.lease_id,
            p.worker_id,
            _ts(p, "started_at"),
            _ts(p, "finished_at"),
            p.outcome,
            _error(p, "error"),
        )


@dataclass(frozen=True)
class PayloadRef:
    """A payload larger than the control plane's inline limit, kept in its object storage.

    Read APIs return this instead of the bytes (the ``*_json`` field is then empty); the HTTP API
    (``/api/v1/runs/{id}/input``, ``…/output``, ``…/tasks/{name}/output``) serves the document."""

    #: Bytes of JSON text.
    size: int
    #: Lowercase hex SHA-256 of those bytes ("" for a run output assembled from its tasks').
    sha256: str

    @classmethod
    def of(cls, message: Any, name: str) -> PayloadRef | None:
        if not message.HasField(name):
            return None
        r = getattr(message, name)
        return cls(r.size, r.sha256)


@dataclass
class Task:
    id: str
    name: str
    task_type: str
    state: TaskState
    depends_on: list[str]
    attempt: int
    max_attempts: int
    output_json: str
    last_error: ErrorInfo | None
    available_at: datetime | None
    created_at: datetime | None
    finished_at: datetime | None
    attempts: list[TaskAttempt]
    #: Set (and ``output_json`` empty) when the output is kept in object storage.
    output_ref: PayloadRef | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def output(self) -> Any:
        return _json(self.output_json)

    @classmethod
    def from_proto(cls, p: _pb.run.Task) -> Task:
        return cls(
            id=p.id,
            name=p.name,
            task_type=p.task_type,
            state=TaskState.from_proto(p.state),
            depends_on=list(p.depends_on),
            attempt=p.attempt,
            max_attempts=p.max_attempts,
            output_json=p.output_json,
            last_error=_error(p, "last_error"),
            available_at=_ts(p, "available_at"),
            created_at=_ts(p, "created_at"),
            finished_at=_ts(p, "finished_at"),
            attempts=[TaskAttempt.from_proto(a) for a in p.attempts],
            output_ref=PayloadRef.of(p, "output_ref"),
            raw=p,
        )


@dataclass
class Run:
    id: str
    workflow_name: str
    workflow_version: int
    state: RunState
    input_json: str
    output_json: str
    idempotency_key: str
    trigger_source: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    tasks: list[Task]
    #: Why the run failed or was cancelled; while queued, what it waits for.
    reason: str
    priority: Priority = Priority.NORMAL
    #: The trigger's concurrency key ("" for none).
    concurrency_key: str = ""
    #: Set when a cron schedule made the run: the schedule and the tick's nominal fire time.
    schedule_id: str = ""
    scheduled_for: datetime | None = None
    #: Set (and ``input_json`` empty) when the input is kept in object storage.
    input_ref: PayloadRef | None = None
    #: Set (and ``output_json`` empty) when the output is assembled from its tasks' payloads.
    output_ref: PayloadRef | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def input(self) -> Any:
        return _json(self.input_json)

    @property
    def output(self) -> Any:
        return _json(self.output_json)

    def task(self, name: str) -> Task:
        """The task called ``name`` (``KeyError`` if there is none)."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    @classmethod
    def from_proto(cls, p: _pb.run.Run) -> Run:
        source = _pb.common.TriggerSource.Name(p.trigger_source) if p.trigger_source in _SOURCES else "UNSPECIFIED"
        return cls(
            id=p.id,
            workflow_name=p.workflow_name,
            workflow_version=p.workflow_version,
            state=RunState.from_proto(p.state),
            input_json=p.input_json,
            output_json=p.output_json,
            idempotency_key=p.idempotency_key,
            trigger_source=source.removeprefix("TRIGGER_SOURCE_").lower(),
            created_at=_ts(p, "created_at"),
            started_at=_ts(p, "started_at"),
            finished_at=_ts(p, "finished_at"),
            tasks=[Task.from_proto(t) for t in p.tasks],
            reason=p.reason,
            priority=Priority.from_proto(p.priority),
            concurrency_key=p.concurrency_key,
            schedule_id=p.schedule_id,
            scheduled_for=_ts(p, "scheduled_for"),
            input_ref=PayloadRef.of(p, "input_ref"),
            output_ref=PayloadRef.of(p, "output_ref"),
            raw=p,
        )


_SOURCES = set(_pb.common.TriggerSource.values())


@dataclass
class RunEvent:
    run_id: str
    sequence: int
    kind: str
    task_name: str
    attempt: int
    at: datetime | None
    detail_json: str
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def detail(self) -> Any:
        return _json(self.detail_json)

    @classmethod
    def from_proto(cls, p: _pb.run.RunEvent) -> RunEvent:
        return cls(p.run_id, p.sequence, p.kind, p.task_name, p.attempt, _ts(p, "at"), p.detail_json, raw=p)


class Triggered(NamedTuple):
    """What :meth:`Client.trigger` returns; unpacks as ``run, created = client.trigger(...)``."""

    run: Run
    #: False when the idempotency key matched an existing run.
    created: bool


@dataclass
class StoredWorkflow:
    """A stored, immutable workflow version (the definition with defaults filled in)."""

    name: str
    version: int
    content_hash: str
    created_at: datetime | None
    definition: Workflow
    #: From PutWorkflow: False when the content equalled the latest version.
    created: bool | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_proto(cls, p: _pb.workflow.Workflow, created: bool | None = None) -> StoredWorkflow:
        return cls(
            p.name, p.version, p.content_hash, _ts(p, "created_at"), Workflow.from_proto(p.definition), created, raw=p
        )


@dataclass
class WorkflowSummary:
    name: str
    latest_version: int
    description: str
    task_count: int
    updated_at: datetime | None

    @classmethod
    def from_proto(cls, p: _pb.workflow.WorkflowSummary) -> WorkflowSummary:
        return cls(p.name, p.latest_version, p.description, p.task_count, _ts(p, "updated_at"))


@dataclass
class ValidationResult:
    valid: bool
    #: ``(path, reason)`` pairs, in definition order.
    errors: list[Any]

    def __bool__(self) -> bool:
        return self.valid


@dataclass
class DeadLetter:
    id: str
    task_id: str
    run_id: str
    workflow_name: str
    workflow_version: int
    task_name: str
    task_type: str
    last_error: ErrorInfo | None
    attempts: int
    created_at: datetime | None
    raw: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_proto(cls, p: _pb.admin.DeadLetter) -> DeadLetter:
        return cls(
            p.id,
            p.task_id,
            p.run_id,
            p.workflow_name,
            p.workflow_version,
            p.task_name,
            p.task_type,
            _error(p, "last_error"),
            p.attempts,
            _ts(p, "created_at"),
            raw=p,
        )


@dataclass
class RedriveResult:
    redriven: int
    task_ids: list[str]


@dataclass
class WorkerInfo:
    id: str
    name: str
    task_types: list[str]
    slots: int
    free_slots: int
    labels: dict[str, str]
    sdk_language: str
    sdk_version: str
    draining: bool
    connected_at: datetime | None
    last_heartbeat_at: datetime | None

    @classmethod
    def from_proto(cls, p: _pb.admin.WorkerInfo) -> WorkerInfo:
        return cls(
            p.id,
            p.name,
            list(p.task_types),
            p.slots,
            p.free_slots,
            dict(p.labels),
            p.sdk_language,
            p.sdk_version,
            p.draining,
            _ts(p, "connected_at"),
            _ts(p, "last_heartbeat_at"),
        )


@dataclass
class QueueInfo:
    task_type: str
    ready: int
    leased: int
    lag: timedelta
    workers: int

    @classmethod
    def from_proto(cls, p: _pb.admin.QueueInfo) -> QueueInfo:
        return cls(p.task_type, p.ready, p.leased, to_timedelta(p.lag), p.workers)


class Page(list, Generic[T]):  # type: ignore[type-arg]
    """One page of a List call: a list of items plus ``next_page_token`` ("" on the last page)."""

    def __init__(self, items: list[T], next_page_token: str = "") -> None:
        super().__init__(items)
        self.next_page_token = next_page_token

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next_page_token={self.next_page_token!r})"
