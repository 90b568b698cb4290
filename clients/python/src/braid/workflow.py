"""Workflows declared in code, and the file form (dicts) of workflow definitions.

A :class:`Workflow` built in code produces exactly the ``WorkflowDefinition`` its YAML file
would, so both have the same content hash on the server::

    wf = braid.Workflow("thumbnails", description="Fetch, resize, publish.",
                        default_retry=braid.Retry(max_attempts=3, initial_backoff="1s"))
    fetch = wf.task("fetch", "http-get")
    wf.task("small", "resize", depends_on=[fetch])
    wf.task("publish", "upload", depends_on=["small"], timeout="30s")

or, with handlers attached (``worker.register_workflow(wf)`` also registers them)::

    @wf.step(task_type="resize", depends_on=["fetch"])
    async def small(input, ctx): ...
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import duration_pb2

from braid import _pb
from braid.durations import DurationLike, format_proto, to_proto

_TOP_KEYS = ("name", "description", "tasks", "settings")
_TASK_KEYS = ("name", "task_type", "depends_on", "retry", "timeout", "description")
_RETRY_KEYS = ("max_attempts", "initial_backoff", "multiplier", "max_backoff", "jitter")
_SETTINGS_KEYS = (
    "default_retry",
    "default_task_timeout",
    "max_concurrent_runs",
    "concurrency_policy",
    "max_per_key",
    "retention",
)


class DefinitionError(ValueError):
    """A workflow definition in file form (a dict) has a shape the client cannot convert."""


def _duration(value: Any, path: str) -> duration_pb2.Duration:
    try:
        return to_proto(value)
    except (TypeError, ValueError) as e:
        raise DefinitionError(f"{path}: {e}") from None


class ConcurrencyPolicy(str, enum.Enum):
    """What happens to a run that does not fit under ``max_concurrent_runs`` or ``max_per_key``.

    Workflows take a member or its value (``"queue"``, ``"cancel_newest"``,
    ``"cancel_in_progress"``), as in the file form's ``settings.concurrency_policy``."""

    #: Wait in ``RunState.QUEUED``, admitted first come, first served (the default).
    QUEUE = "queue"
    #: The new run is cancelled at once.
    CANCEL_NEWEST = "cancel_newest"
    #: The oldest running run is cancelled to make room.
    CANCEL_IN_PROGRESS = "cancel_in_progress"

    @classmethod
    def parse(cls, value: ConcurrencyPolicy | str, path: str = "settings.concurrency_policy") -> ConcurrencyPolicy:
        """``value`` as a member; :class:`DefinitionError` naming the accepted values when it is none."""
        if isinstance(value, ConcurrencyPolicy):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        accepted = ", ".join(repr(p.value) for p in cls)
        raise DefinitionError(f"{path}: unknown concurrency policy {value!r}: expected one of {accepted}")

    @classmethod
    def from_proto(cls, value: int) -> ConcurrencyPolicy | None:
        """Unspecified is ``None`` (the server's default, queue)."""
        if value == _pb.workflow.CONCURRENCY_POLICY_UNSPECIFIED:
            return None
        try:
            name = _pb.workflow.ConcurrencyPolicy.Name(value).removeprefix("CONCURRENCY_POLICY_")
            return cls[name]
        except (ValueError, KeyError):
            raise DefinitionError(f"settings.concurrency_policy: unknown value {value}") from None

    def to_proto(self) -> int:
        return _pb.workflow.ConcurrencyPolicy.Value(f"CONCURRENCY_POLICY_{self.name}")


#: What ``Workflow(concurrency_policy=...)`` takes: a :class:`ConcurrencyPolicy` or its value.
ConcurrencyPolicyLike = ConcurrencyPolicy | str


@dataclass
class Retry:
    """A task's retry policy; every field left ``None`` takes the default."""

    max_attempts: int | None = None
    initial_backoff: DurationLike | None = None
    multiplier: float | None = None
    max_backoff: DurationLike | None = None
    jitter: bool | None = None

    def to_proto(self, path: str = "retry") -> _pb.common.RetryPolicy:
        p = _pb.common.RetryPolicy()
        if self.max_attempts is not None:
            p.max_attempts = int(self.max_attempts)
        if self.initial_backoff is not None:
            p.initial_backoff.CopyFrom(_duration(self.initial_backoff, f"{path}.initial_backoff"))
        if self.multiplier is not None:
            p.multiplier = float(self.multiplier)
        if self.max_backoff is not None:
            p.max_backoff.CopyFrom(_duration(self.max_backoff, f"{path}.max_backoff"))
        if self.jitter is not None:
            p.jitter = bool(self.jitter)
        return p

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str = "retry") -> Retry:
        _check_keys(d, _RETRY_KEYS, path)
        return cls(**{k: d[k] for k in _RETRY_KEYS if d.get(k) is not None})

    @classmethod
    def from_proto(cls, p: _pb.common.RetryPolicy) -> Retry:
        return cls(
            max_attempts=p.max_attempts if p.HasField("max_attempts") else None,
            initial_backoff=format_proto(p.initial_backoff) if p.HasField("initial_backoff") else None,
            multiplier=p.multiplier if p.HasField("multiplier") else None,
            max_backoff=format_proto(p.max_backoff) if p.HasField("max_backoff") else None,
            jitter=p.jitter if p.HasField("jitter") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _RETRY_KEYS if getattr(self, k) is not None}


@dataclass
class TaskDef:
    """One node of a workflow's DAG."""

    name: str
    task_type: str
    depends_on: list[str] = field(default_factory=list)
    retry: Retry | None = None
    timeout: DurationLike | None = None
    description: str = ""
    #: The handler attached with :meth:`Workflow.step`, if any.
    handler: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def to_proto(self, path: str = "task") -> _pb.workflow.TaskDefinition:
        p = _pb.workflow.TaskDefinition(
            name=self.name, task_type=self.task_type, depends_on=list(self.depends_on), description=self.description
        )
        if self.retry is not None:
            p.retry.CopyFrom(self.retry.to_proto(f"{path}.retry"))
        if self.timeout is not None:
            p.timeout.CopyFrom(_duration(self.timeout, f"{path}.timeout"))
        return p

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "task_type": self.task_type}
        if self.depends_on:
            d["depends_on"] = list(self.depends_on)
        if self.retry is not None:
            d["retry"] = self.retry.to_dict()
        if self.timeout is not None:
            d["timeout"] = self.timeout
        if self.description:
            d["description"] = self.description
        return d


def _dep_name(dep: Any) -> str:
    if isinstance(dep, str):
        return dep
    if isinstance(dep, TaskDef):
        return dep.name
    task = getattr(dep, "braid_task", None)
    if isinstance(task, TaskDef):
        return task.name
    raise TypeError(f"depends_on entries are task names, TaskDefs or @step functions (got {dep!r})")


class Workflow:
    """A workflow definition built in code; see the module documentation."""

    def __init__(
        self,
        name: str,
        description: str = "",
        *,
        default_retry: Retry | None = None,
        default_task_timeout: DurationLike | None = None,
        max_concurrent_runs: int = 0,
        concurrency_policy: ConcurrencyPolicyLike | None = None,
        max_per_key: int = 0,
        retention: DurationLike | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.default_retry = default_retry
        self.default_task_timeout = default_task_timeout
        self.max_concurrent_runs = max_concurrent_runs
        #: ``None`` (omitted) is the server's default, queue; a bad name raises ``DefinitionError``.
        self.concurrency_policy = None if concurrency_policy is None else ConcurrencyPolicy.parse(concurrency_policy)
        self.max_per_key = max_per_key
        self.retention = retention
        self.tasks: list[TaskDef] = []

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, tasks={[t.name for t in self.tasks]!r})"

    def task(
        self,
        name: str,
        task_type: str | None = None,
        *,
        depends_on: Iterable[Any] = (),
        retry: Retry | None = None,
        timeout: DurationLike | None = None,
        description: str = "",
        handler: Callable[..., Any] | None = None,
    ) -> TaskDef:
        """Adds a task (``task_type`` defaults to ``name``) and returns it, for ``depends_on``."""
        task = TaskDef(
            name=name,
            task_type=task_type if task_type is not None else name,
            depends_on=[_dep_name(d) for d in depends_on],
            retry=retry,
            timeout=timeout,
            description=description,
            handler=handler,
        )
        self.tasks.append(task)
        return task

    def step(
        self,
        name: str | None = None,
        *,
        task_type: str | None = None,
        depends_on: Iterable[Any] = (),
        retry: Retry | None = None,
        timeout: DurationLike | None = None,
        description: str = "",
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: adds a task named after the function (or ``name``) served by it.

        The function is returned unchanged, with ``braid_task`` set to its :class:`TaskDef`;
        :meth:`braid.Worker.register_workflow` registers it for its task type.
        """

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            task = self.task(
                name or fn.__name__,
                task_type,
                depends_on=depends_on,
                retry=retry,
                timeout=timeout,
                description=description,
                handler=fn,
            )
            fn.braid_task = task  # type: ignore[attr-defined]
            return fn

        return decorate

    # --- conversions ---------------------------------------------------------

    def to_proto(self) -> _pb.workflow.WorkflowDefinition:
        p = _pb.workflow.WorkflowDefinition(name=self.name, description=self.description)
        for i, t in enumerate(self.tasks):
            p.tasks.append(t.to_proto(f"tasks[{i}]"))
        if (
            self.default_retry is not None
            or self.default_task_timeout is not None
            or self.max_concurrent_runs
            or self.concurrency_policy is not None
            or self.max_per_key
            or self.retention is not None
        ):
            s = p.settings
            s.SetInParent()
            if self.default_retry is not None:
                s.default_retry.CopyFrom(self.default_retry.to_proto("settings.default_retry"))
            if self.default_task_timeout is not None:
                s.default_task_timeout.CopyFrom(_duration(self.default_task_timeout, "settings.default_task_timeout"))
            s.max_concurrent_runs = int(self.max_concurrent_runs)
            if self.concurrency_policy is not None:
                s.concurrency_policy = ConcurrencyPolicy.parse(self.concurrency_policy).to_proto()
            s.max_per_key = int(self.max_per_key)
            if self.retention is not None:
                s.retention.CopyFrom(_duration(self.retention, "settings.retention"))
        return p

    def to_dict(self) -> dict[str, Any]:
        """The file form (what ``braid workflow apply -f`` reads), e.g. to dump as YAML or JSON."""
        d: dict[str, Any] = {"name": self.name}
        if self.description:
            d["description"] = self.description
        settings: dict[str, Any] = {}
        if self.default_retry is not None:
            settings["default_retry"] = self.default_retry.to_dict()
        if self.default_task_timeout is not None:
            settings["default_task_timeout"] = self.default_task_timeout
        if self.max_concurrent_runs:
            settings["max_concurrent_runs"] = self.max_concurrent_runs
        if self.concurrency_policy is not None:
            settings["concurrency_policy"] = ConcurrencyPolicy.parse(self.concurrency_policy).value
        if self.max_per_key:
            settings["max_per_key"] = self.max_per_key
        if self.retention is not None:
            settings["retention"] = self.retention
        if settings:
            d["settings"] = settings
        d["tasks"] = [t.to_dict() for t in self.tasks]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Workflow:
        """A workflow from its file form: the same keys as the YAML/JSON file, durations as
        strings like ``"1s"``. Unknown keys are errors (as in ``braid workflow apply``)."""
        if not isinstance(d, Mapping):
            raise DefinitionError(f"a workflow definition is a mapping (got {type(d).__name__})")
        _check_keys(d, _TOP_KEYS, "")
        settings = d.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise DefinitionError("settings: expected a mapping")
        _check_keys(settings, _SETTINGS_KEYS, "settings")
        retry = settings.get("default_retry")
        wf = cls(
            _str(d.get("name"), "name"),
            _str(d.get("description"), "description"),
            default_retry=Retry.from_dict(_mapping(retry, "settings.default_retry"), "settings.default_retry")
            if retry is not None
            else None,
            default_task_timeout=settings.get("default_task_timeout"),
            max_concurrent_runs=int(settings.get("max_concurrent_runs") or 0),
            concurrency_policy=settings.get("concurrency_policy"),
            max_per_key=int(settings.get("max_per_key") or 0),
            retention=settings.get("retention"),
        )
        tasks = d.get("tasks") or []
        if not isinstance(tasks, list):
            raise DefinitionError("tasks: expected a list")
        for i, t in enumerate(tasks):
            path = f"tasks[{i}]"
            t = _mapping(t, path)
            _check_keys(t, _TASK_KEYS, path)
            deps = t.get("depends_on") or []
            if not isinstance(deps, list) or not all(isinstance(x, str) for x in deps):
                raise DefinitionError(f"{path}.depends_on: expected a list of task names")
            task_retry = t.get("retry")
            wf.tasks.append(
                TaskDef(
                    name=_str(t.get("name"), f"{path}.name"),
                    task_type=_str(t.get("task_type"), f"{path}.task_type"),
                    depends_on=list(deps),
                    retry=Retry.from_dict(_mapping(task_retry, f"{path}.retry"), f"{path}.retry")
                    if task_retry is not None
                    else None,
                    timeout=t.get("timeout"),
                    description=_str(t.get("description"), f"{path}.description"),
                )
            )
        return wf

    @classmethod
    def from_json(cls, text: str) -> Workflow:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_proto(cls, p: _pb.workflow.WorkflowDefinition) -> Workflow:
        s = p.settings
        wf = cls(
            p.name,
            p.description,
            default_retry=Retry.from_proto(s.default_retry) if s.HasField("default_retry") else None,
            default_task_timeout=format_proto(s.default_task_timeout) if s.HasField("default_task_timeout") else None,
            max_concurrent_runs=s.max_concurrent_runs,
            concurrency_policy=ConcurrencyPolicy.from_proto(s.concurrency_policy),
            max_per_key=s.max_per_key,
            retention=format_proto(s.retention) if s.HasField("retention") else None,
        )
        for t in p.tasks:
            wf.tasks.append(
                TaskDef(
                    name=t.name,
                    task_type=t.task_type,
                    depends_on=list(t.depends_on),
                    retry=Retry.from_proto(t.retry) if t.HasField("retry") else None,
                    timeout=format_proto(t.timeout) if t.HasField("timeout") else None,
                    description=t.description,
                )
            )
        return wf


def _check_keys(d: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in d:
        if key not in allowed:
            where = f"{path}." if path else ""
            raise DefinitionError(f"{where}{key}: unknown field; expected one of {', '.join(allowed)}")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DefinitionError(f"{path}: expected a mapping")
    return value


def _str(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DefinitionError(f"{path}: expected a string")
    return value


def definition_proto(definition: Any) -> _pb.workflow.WorkflowDefinition:
    """A ``WorkflowDefinition`` from a :class:`Workflow`, a file-form dict, JSON text, or the proto."""
    if isinstance(definition, _pb.workflow.WorkflowDefinition):
        return definition
    if isinstance(definition, Workflow):
        return definition.to_proto()
    if isinstance(definition, Mapping):
        return Workflow.from_dict(definition).to_proto()
    if isinstance(definition, str):
        return Workflow.from_json(definition).to_proto()
    raise TypeError(f"expected a braid.Workflow, a dict in file form or a WorkflowDefinition (got {definition!r})")
