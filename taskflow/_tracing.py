"""OpenTelemetry spans for task attempts, when the application traces.

taskflow never imports OpenTelemetry itself: tracing is on when the application has imported
`opentelemetry.trace` and set a tracer provider (anything but the API's default proxy or no-op provider).
Without that, `current_traceparent()` and `tracer()` return None at the cost of a dictionary lookup and,
while OpenTelemetry is imported (FastAPI imports it when it is installed), a clock read.

Each attempt is one span named after the task (`start_attempt_span`). Its parent is the request span that
submitted the task while that span is still open (a task run inline, before the response ends); otherwise,
and for a task run again after a restart, the span starts a new trace linked to the submitting span, whose
W3C `traceparent` the record keeps in `trace_context` (stored with it, so the link survives a restart). A
retry's span also links to the span of the attempt that failed.
"""

from __future__ import annotations

import os
import socket
import sys
from time import monotonic
from typing import Any

__all__ = ["current_traceparent", "end_attempt_span", "recheck", "start_attempt_span", "tracer"]

TRACER_NAME = "taskflow"
# (provider, its tracer or None for the API's own providers): get_tracer() and the type checks are not free,
# and this runs on every attempt
_cache: tuple[Any, Any] = (None, None)
UNSET_RECHECK = 0.05
"""Seconds a "no tracer provider is set" answer is kept: a provider set later is used from then on."""
_unset_until = 0.0  # monotonic time until which no provider is taken as still set (0: ask)
_default_instance = f"{socket.gethostname()}:{os.getpid()}"


def tracer() -> Any:
    """The tracer for task spans, or None when the application does not trace (see the module docstring).

    While no provider is set, the answer is kept for `UNSET_RECHECK` seconds: asking OpenTelemetry costs
    an environment lookup that raises and catches a KeyError (`get_tracer_provider()` looks for
    `OTEL_PYTHON_TRACER_PROVIDER` on every call until a provider is set), and FastAPI imports OpenTelemetry
    whenever it is installed, so every app would pay it on each task and attempt. `recheck()` drops it.
    """
    global _cache, _unset_until
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    if _unset_until and monotonic() < _unset_until:
        return None
    provider = trace.get_tracer_provider()
    cached_provider, cached = _cache
    if provider is cached_provider:
        found = cached
    elif isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        found = None
    else:
        found = provider.get_tracer(TRACER_NAME)
    _cache = (provider, found)
    _unset_until = monotonic() + UNSET_RECHECK if found is None else 0.0
    return found


def recheck() -> None:
    """Ask OpenTelemetry again on the next `tracer()` call (a task manager starts: the app may have set its
    provider just before)."""
    global _unset_until
    _unset_until = 0.0


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span (the request's, in `add_task`), or None; None too when
    the application does not trace (no tracer provider set), whatever a propagator put in the context."""
    if tracer() is None:  # one lookup: the span chain below is not free, and this runs on every add_task
        return None
    trace = sys.modules["opentelemetry.trace"]
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _parse(traceparent: str, trace: Any) -> Any:
    """The remote span context a `traceparent` names, or None when the text is not one."""
    try:
        version, trace_id, span_id, flags = traceparent.split("-")
        context = trace.SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=trace.TraceFlags(int(flags, 16))
        )
    except ValueError:
        return None
    return context if version == "00" and context.is_valid else None


def start_attempt_span(
    tracer: Any,
    *,
    name: str,
    task_id: str,
    attempt: int,
    tags: dict[str, str],
    trace_context: str | None,
    previous: Any,
    instance: str | None,
) -> Any:
    """Start the span of one attempt in the current context (see the module docstring for its parent and
    links); `previous` is the span context of the failed attempt this one retries, or None."""
    trace = sys.modules["opentelemetry.trace"]
    parent = trace.get_current_span()
    links = []
    context = None  # the current one: the span is the open request span's child
    if not parent.is_recording():
        context = sys.modules["opentelemetry.context"].Context()  # an empty context: a new trace
        origin = _parse(trace_context, trace) if trace_context else None
        if origin is None and parent.get_span_context().is_valid:
            origin = parent.get_span_context()
        if origin is not None:
            links.append(trace.Link(origin, {"taskflow.link": "submitted"}))
    if previous is not None:
        links.append(trace.Link(previous, {"taskflow.link": "retry_of"}))
    attributes: dict[str, Any] = {
        "taskflow.task_id": task_id,
        "taskflow.func_name": name,
        "taskflow.attempt": attempt,
        "taskflow.instance": instance or _default_instance,
    }
    for key, value in tags.items():
        attributes[f"taskflow.tag.{key}"] = value
    return tracer.start_span(
        name, context=context, kind=trace.SpanKind.CONSUMER, attributes=attributes, links=links
    )


def end_attempt_span(span: Any, error: BaseException | None) -> Any:
    """End an attempt's span, recording `error` and an error status when the attempt raised one; returns
    the span's context when the attempt failed (the next attempt links to it), else None."""
    if error is None:
        span.end()
        return None
    status = sys.modules["opentelemetry.trace"].Status
    code = sys.modules["opentelemetry.trace.status"].StatusCode.ERROR
    if isinstance(error, Exception):
        span.record_exception(error)
        span.set_status(status(code, f"{type(error).__name__}: {error}"))
    else:  # cancelled (shutdown, a timeout, the API): not the task's own error
        span.set_attribute("taskflow.cancelled", True)
        span.set_status(status(code, "cancelled"))
    span.end()
    return span.get_span_context()
