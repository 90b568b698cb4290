"""Pieces that need no server: durations, conversions, envelopes, definitions, errors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

import braid
from braid import _convert, _pb, durations
from braid.client import _Requests, channel_credentials
from braid.errors import from_rpc_error
from braid.worker import _Backoff, _parse_envelope


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("500ms", 500_000_000),
        ("1s", 1_000_000_000),
        ("1m 30s", 90_000_000_000),
        ("90000ms", 90_000_000_000),
        ("2h", 7_200_000_000_000),
        ("1day", 86_400_000_000_000),
        ("0.5s", 500_000_000),
        (timedelta(milliseconds=250), 250_000_000),
        (2, 2_000_000_000),
        (0.1, 100_000_000),
    ],
)
def test_durations(text: object, nanos: int) -> None:
    assert durations.parse_nanos(text) == nanos


@pytest.mark.parametrize("bad", ["", "1", "5 parsecs", "s", -1, True, None])
def test_bad_durations(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        durations.parse_nanos(bad)


def test_duration_format_round_trip() -> None:
    assert durations.format_proto(durations.to_proto("1m 30s")) == "1m 30s"
    assert durations.format_proto(durations.to_proto("300s")) == "5m"


def test_envelope_shapes() -> None:
    assert _parse_envelope('{"input": {"a": 1}, "deps": {"fetch": [1, 2]}}') == ({"a": 1}, {"fetch": [1, 2]})
    assert _parse_envelope("  ") == (None, {})
    assert _parse_envelope('{"deps": null}') == (None, {})
    for bad in ["[1]", "{", '{"deps": 3}']:
        with pytest.raises(braid.TaskError) as caught:
            _parse_envelope(bad)
        assert (caught.value.type, caught.value.retryable) == ("bad_input", False)


@dataclass
class Inner:
    x: int


@dataclass
class Outer:
    inner: Inner
    items: list[Inner]
    maybe: Inner | None = None


def test_typed_conversion() -> None:
    value = {"inner": {"x": 1}, "items": [{"x": 2}], "ignored": True}
    assert _convert.from_jsonable(value, Outer) == Outer(Inner(1), [Inner(2)])
    assert _convert.to_jsonable(Outer(Inner(1), [])) == {"inner": {"x": 1}, "items": [], "maybe": None}
    with pytest.raises(ValueError, match="needs field 'items'"):
        _convert.from_jsonable({"inner": {"x": 1}}, Outer)
    assert _convert.from_jsonable({"a": 1}, dict) == {"a": 1}
    assert not _convert.wants_conversion(dict)


def test_task_error_from_exception() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as e:
            raise RuntimeError("outer") from e
    except RuntimeError as e:
        err = braid.TaskError.from_exception(e)
    assert (err.type, err.retryable, err.message) == ("RuntimeError", True, "outer: 'inner'")
    proto = braid.FatalError("no", type="bad", details={"k": 1}).to_proto()
    assert (proto.type, proto.retryable, proto.details_json) == ("bad", False, '{"k":1}')
    assert braid.TaskError("x").to_proto().details_json == ""


def test_definition_from_dict_is_strict() -> None:
    with pytest.raises(braid.DefinitionError, match=r"^colour: unknown field"):
        braid.Workflow.from_dict({"name": "x", "colour": "red", "tasks": []})
    with pytest.raises(braid.DefinitionError, match=r"settings\.default_retry\.tries"):
        braid.Workflow.from_dict({"name": "x", "tasks": [], "settings": {"default_retry": {"tries": 1}}})
    with pytest.raises(braid.DefinitionError, match=r"tasks\[0\]\.timeout"):
        braid.Workflow.from_dict(
            {"name": "x", "tasks": [{"name": "a", "task_type": "a", "timeout": "soon"}]}
        ).to_proto()


def test_code_and_dict_forms_make_the_same_message() -> None:
    wf = braid.Workflow("w", default_task_timeout="2m", default_retry=braid.Retry(jitter=False))
    a = wf.task("a", "ta")
    wf.task("b", "tb", depends_on=[a], retry=braid.Retry(max_attempts=1), timeout="30s", description="b!")
    assert braid.Workflow.from_dict(wf.to_dict()).to_proto() == wf.to_proto()
    assert braid.Workflow.from_proto(wf.to_proto()).to_proto() == wf.to_proto()


def test_concurrency_settings_and_retention_round_trip() -> None:
    file_form = {
        "name": "report",
        "settings": {
            "max_concurrent_runs": 4,
            "concurrency_policy": "cancel_in_progress",
            "max_per_key": 1,
            "retention": "30d",
        },
        "tasks": [{"name": "a", "task_type": "ta"}],
    }
    wf = braid.Workflow.from_dict(file_form)
    assert wf.concurrency_policy is braid.ConcurrencyPolicy.CANCEL_IN_PROGRESS
    assert wf.to_dict() == file_form
    p = wf.to_proto()
    s = p.settings
    assert s.concurrency_policy == _pb.workflow.CONCURRENCY_POLICY_CANCEL_IN_PROGRESS
    assert (s.max_concurrent_runs, s.max_per_key) == (4, 1)
    assert s.retention.seconds == 30 * 86400 and s.retention.nanos == 0
    back = braid.Workflow.from_proto(p)
    assert back.concurrency_policy is braid.ConcurrencyPolicy.CANCEL_IN_PROGRESS
    assert (back.max_per_key, durations.parse_nanos(back.retention)) == (1, 30 * 86400 * 10**9)
    assert back.to_proto() == p

    # The code form, with a member or its value, gives the same message.
    for policy in (braid.ConcurrencyPolicy.CANCEL_IN_PROGRESS, "cancel_in_progress"):
        code = braid.Workflow(
            "report", max_concurrent_runs=4, concurrency_policy=policy, max_per_key=1, retention=timedelta(days=30)
        )
        code.task("a", "ta")
        assert code.to_proto() == p

    # Omitted: nothing on the wire (the server's defaults), and nothing in the file form.
    plain = braid.Workflow.from_dict({"name": "w", "tasks": []})
    assert plain.concurrency_policy is None and plain.max_per_key == 0 and plain.retention is None
    assert not plain.to_proto().HasField("settings")
    assert "settings" not in plain.to_dict()
    # The server returns the default filled in (QUEUE); it reads back as queue.
    stored = _pb.workflow.WorkflowDefinition(name="w")
    stored.settings.concurrency_policy = _pb.workflow.CONCURRENCY_POLICY_QUEUE
    assert braid.Workflow.from_proto(stored).concurrency_policy is braid.ConcurrencyPolicy.QUEUE
    assert braid.Workflow.from_proto(_pb.workflow.WorkflowDefinition(name="w")).concurrency_policy is None


@pytest.mark.parametrize("bad", ["cancel_oldest", "", "QUEUE", "CONCURRENCY_POLICY_QUEUE", 2])
def test_unknown_concurrency_policy_is_refused(bad: object) -> None:
    expected = (
        r"^settings\.concurrency_policy: unknown concurrency policy .*"
        r"expected one of 'queue', 'cancel_newest', 'cancel_in_progress'"
    )
    with pytest.raises(braid.DefinitionError, match=expected):
        braid.Workflow.from_dict({"name": "x", "tasks": [], "settings": {"concurrency_policy": bad}})
    with pytest.raises(braid.DefinitionError, match=expected):
        braid.Workflow("x", concurrency_policy=bad)  # type: ignore[arg-type]
    with pytest.raises(braid.DefinitionError, match=r"settings\.retention"):
        braid.Workflow.from_dict({"name": "x", "tasks": [], "settings": {"retention": "forever"}}).to_proto()
    with pytest.raises(braid.DefinitionError, match=r"settings\.concurrency_policy: unknown value 99"):
        stored = _pb.workflow.WorkflowDefinition(name="w")
        stored.settings.concurrency_policy = 99
        braid.Workflow.from_proto(stored)


def test_backoff_doubles_to_the_cap_with_jitter_below_the_ceiling() -> None:
    b = _Backoff(0.1, 10.0)
    ceilings = []
    for _ in range(10):
        ceiling = b.ceiling()
        ceilings.append(round(ceiling, 3))
        assert 0 <= b.next_delay() <= ceiling
    assert ceilings == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]
    b.reset()
    assert b.ceiling() == 0.1


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


def test_bad_request_details_are_decoded() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="tasks[0].name", description="empty")]
    )
    detail = any_pb2.Any()
    detail.Pack(bad)
    status = status_pb2.Status(code=3, message="invalid", details=[detail])
    err = from_rpc_error(
        FakeRpcError(
            grpc.StatusCode.INVALID_ARGUMENT, "invalid", (("grpc-status-details-bin", status.SerializeToString()),)
        )
    )
    assert isinstance(err, braid.InvalidArgumentError)
    assert err.violations == [("tasks[0].name", "empty")]
    assert "tasks[0].name: empty" in str(err)
    plain = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down", ()))
    assert isinstance(plain, braid.UnavailableError) and plain.violations == []


@pytest.mark.parametrize(
    ("priority", "wire"),
    [
        (None, "PRIORITY_UNSPECIFIED"),
        ("high", "PRIORITY_HIGH"),
        ("normal", "PRIORITY_NORMAL"),
        ("low", "PRIORITY_LOW"),
        (braid.Priority.HIGH, "PRIORITY_HIGH"),
        (braid.Priority.LOW, "PRIORITY_LOW"),
    ],
)
def test_trigger_request_carries_priority_and_concurrency_key(priority: object, wire: str) -> None:
    req = _Requests.trigger("wf", {"a": 1}, "idem-1", 3, None, priority, "customer-42")  # type: ignore[arg-type]
    assert req.priority == _pb.common.Priority.Value(wire)
    assert req.concurrency_key == "customer-42"
    assert (req.workflow_name, req.workflow_version, req.idempotency_key) == ("wf", 3, "idem-1")
    assert json.loads(req.input_json) == {"a": 1}


def test_trigger_request_defaults_leave_priority_and_key_unset() -> None:
    req = _Requests.trigger("wf", None, None, None, None)
    assert req.priority == _pb.common.PRIORITY_UNSPECIFIED
    assert req.concurrency_key == ""


@pytest.mark.parametrize("bad", ["urgent", "", "PRIORITY_HIGH", 1])
def test_trigger_refuses_an_unknown_priority(bad: object) -> None:
    with pytest.raises(ValueError, match=r"unknown priority .*expected one of 'high', 'normal', 'low'"):
        _Requests.trigger("wf", None, None, None, None, bad, None)  # type: ignore[arg-type]


def test_client_trigger_refuses_an_unknown_priority_before_calling() -> None:
    # Nothing listens on this endpoint: the error must come from the argument check.
    with braid.Client("127.0.0.1:1", timeout=0.5) as client, pytest.raises(ValueError, match="unknown priority"):
        client.trigger("wf", priority="urgent")  # type: ignore[arg-type]


def test_run_model_reads_priority_concurrency_key_and_schedule() -> None:
    p = _pb.run.Run(
        id="r",
        state=_pb.common.RUN_STATE_QUEUED,
        priority=_pb.common.PRIORITY_LOW,
        concurrency_key="customer-42",
        schedule_id="nightly",
        reason="waiting for max_per_key (1) of key customer-42",
    )
    p.scheduled_for.FromDatetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    run = braid.Run.from_proto(p)
    assert run.state is braid.RunState.QUEUED
    assert run.priority is braid.Priority.LOW
    assert (run.concurrency_key, run.schedule_id) == ("customer-42", "nightly")
    assert run.scheduled_for == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert run.reason.startswith("waiting for")
    bare = braid.Run.from_proto(_pb.run.Run(id="r"))
    assert bare.priority is braid.Priority.NORMAL  # unspecified is normal
    assert (bare.concurrency_key, bare.schedule_id, bare.scheduled_for) == ("", "", None)


def test_tls_options_need_an_https_endpoint(tmp_path: Path) -> None:
    assert channel_credentials("127.0.0.1:7400") is None
    with pytest.raises(ValueError, match=r"ca_cert set but the endpoint '127\.0\.0\.1:7400' is not https://"):
        channel_credentials("127.0.0.1:7400", ca_cert=b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ValueError, match="not https://"):
        braid.Worker("http://127.0.0.1:7400", ca_cert=b"-----BEGIN CERTIFICATE-----")
    # Without ca_cert, https:// falls back to the system roots.
    assert channel_credentials("https://127.0.0.1:7400") is not None


def test_tls_files_are_checked_when_the_object_is_made(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ValueError, match=re.escape(f"ca_cert {missing}: cannot read")):
        braid.Client("https://127.0.0.1:7400", ca_cert=missing)
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        braid.Worker("https://127.0.0.1:7400", ca_cert=str(not_pem))
    with pytest.raises(ValueError, match="client_cert and client_key go together"):
        channel_credentials("https://127.0.0.1:7400", client_cert=b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ValueError, match=r"client_key \(bytes\): holds no PEM private key"):
        channel_credentials("https://h:1", client_cert=b"-----BEGIN CERTIFICATE-----", client_key=b"x")


def test_large_payloads_come_back_as_references() -> None:
    ref = _pb.common.PayloadRef(size=5 << 20, sha256="ab" * 32)
    task = _pb.run.Task(name="a", output_ref=ref)
    p = _pb.run.Run(id="r", input_ref=ref, output_ref=_pb.common.PayloadRef(size=7), tasks=[task])
    run = braid.Run.from_proto(p)
    assert run.input_ref == braid.PayloadRef(5 << 20, "ab" * 32)
    assert run.input is None and run.output is None, "the documents themselves are not in the message"
    assert run.output_ref == braid.PayloadRef(7, "")
    assert run.task("a").output_ref == braid.PayloadRef(5 << 20, "ab" * 32)
    small = braid.Run.from_proto(_pb.run.Run(id="s", input_json='{"n": 1}'))
    assert (small.input, small.input_ref, small.output_ref) == ({"n": 1}, None, None)
