"""The handler span of each attempt: a child of the assignment's W3C ``traceparent`` (the control
plane's ``dispatch`` span), made with ``opentelemetry-api`` when it is installed (the optional
``braid-client[otel]``) and nothing at all otherwise. The tracer provider (the worker's
``tracer_provider``, else the global one) decides where spans go."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

try:
    from opentelemetry import context as _context
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised when opentelemetry-api is absent
    _trace = None

AVAILABLE = _trace is not None


def start_handler_span(attributes: Mapping[str, Any], trace_context: Mapping[str, str], tracer_provider: Any) -> Any:
    """Starts the ``handler`` span under ``trace_context``; None without opentelemetry-api."""
    if _trace is None:
        return None
    parent = TraceContextTextMapPropagator().extract(dict(trace_context))
    tracer = _trace.get_tracer("braid.worker", tracer_provider=tracer_provider)
    return tracer.start_span("handler", context=parent, kind=_trace.SpanKind.CONSUMER, attributes=dict(attributes))


@contextlib.contextmanager
def current(span: Any) -> Iterator[None]:
    """Makes ``span`` the current span while the handler is started (its task or thread copies
    the context, so the handler runs under it)."""
    if span is None or _trace is None:
        yield
        return
    token = _context.attach(_trace.set_span_in_context(span))
    try:
        yield
    finally:
        _context.detach(token)


def end_handler_span(span: Any, error: str | None) -> None:
    """Ends the span, with an error status when the handler failed."""
    if span is None or _trace is None:
        return
    if error is not None:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, error))
    span.end()
