"""The handler span (needs no server): a child of the assignment's traceparent, current in async and thread handlers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars

import pytest

trace = pytest.importorskip("opentelemetry.trace")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from braid import _tracing  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
CONTEXT = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}


def recording() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def current_trace_id() -> int:
    return trace.get_current_span().get_span_context().trace_id


def test_async_handler_runs_in_a_child_of_the_assignment_context() -> None:
    provider, exporter = recording()

    async def handler() -> int:
        await asyncio.sleep(0)
        return current_trace_id()

    async def main() -> int:
        span = _tracing.start_handler_span({"braid.task_id": "t1", "braid.attempt": 1}, CONTEXT, provider)
        with _tracing.current(span):
            running = asyncio.ensure_future(handler())
        assert current_trace_id() == 0, "the worker's own context is left as it was"
        seen = await running
        _tracing.end_handler_span(span, "boom")
        return seen

    seen = asyncio.run(main())
    [span] = exporter.get_finished_spans()
    assert span.name == "handler"
    assert span.kind == trace.SpanKind.CONSUMER
    assert span.context.trace_id == int(TRACE_ID, 16) == seen
    assert span.parent is not None and span.parent.span_id == int(PARENT_ID, 16) and span.parent.is_remote
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes is not None and span.attributes["braid.task_id"] == "t1"


def test_thread_handler_sees_the_span_through_the_copied_context() -> None:
    provider, exporter = recording()
    span = _tracing.start_handler_span({}, CONTEXT, provider)
    with _tracing.current(span):
        context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        seen = pool.submit(context.run, current_trace_id).result()
    _tracing.end_handler_span(span, None)
    [finished] = exporter.get_finished_spans()
    assert seen == finished.context.trace_id == int(TRACE_ID, 16)
    assert finished.status.status_code == trace.StatusCode.UNSET


def test_without_a_trace_context_the_span_is_a_root() -> None:
    provider, exporter = recording()
    _tracing.end_handler_span(_tracing.start_handler_span({}, {}, provider), None)
    [span] = exporter.get_finished_spans()
    assert span.parent is None
