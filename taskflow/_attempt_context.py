"""What surrounds each attempt of a task for the logging and tracing libraries the application uses.

Around the user's function (inside the task's own context: the event loop for `async def` tasks, the
worker thread for `def` ones) an attempt gets:

- structlog: `task_id`, `func_name`, `attempt` (0-based) and `tags` bound with
  `structlog.contextvars.bind_contextvars`, reset afterwards, so every line the task logs through structlog
  carries them next to what the request bound;
- OpenTelemetry: a span for the attempt, current while it runs (see `_tracing`).

Each is on only when the application has imported the library (for spans: set a tracer provider; recent
FastAPI versions import OpenTelemetry's API themselves, so being imported is not enough): taskflow imports
neither. `wanted()` is the check the actor makes on every attempt.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import _tracing

if TYPE_CHECKING:
    from ._actor import Actor

__all__ = ["bound_log_values", "call_async", "call_sync", "wanted"]

_modules = sys.modules


def wanted() -> bool:
    """True when the application has imported structlog, or traces with OpenTelemetry."""
    return "structlog.contextvars" in _modules or _tracing.tracer() is not None


def bound_log_values(context: contextvars.Context | None = None) -> dict[str, Any] | None:
    """What is bound in structlog's contextvars in `context` (by default the current one), or None when
    nothing is (or structlog was never imported): what observers log with a task's events."""
    module = _modules.get("structlog.contextvars")
    if module is None:
        return None
    if context is None:
        return module.get_contextvars() or None
    prefix = module.STRUCTLOG_KEY_PREFIX
    cut = len(prefix)
    # structlog marks an unbound key with Ellipsis rather than deleting its variable.
    found = {
        var.name[cut:]: value
        for var, value in context.items()
        if value is not Ellipsis and var.name.startswith(prefix)
    }
    return found or None


class _Attempt:
    """The bindings of one attempt: entered before the user's function runs, exited after."""

    __slots__ = ("actor", "otel_token", "span", "structlog_tokens")

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.structlog_tokens: Any = None
        self.span: Any = None
        self.otel_token: Any = None

    def enter(self) -> None:
        actor = self.actor
        record = actor.record
        contextvars = _modules.get("structlog.contextvars")
        if contextvars is not None:
            self.structlog_tokens = contextvars.bind_contextvars(
                task_id=record.task_id,
                func_name=record.func_name,
                attempt=actor.attempt,
                tags=dict(record.tags),
            )
        tracer = _tracing.tracer()
        if tracer is not None:
            persistence = actor.services.persistence
            self.span = _tracing.start_attempt_span(
                tracer,
                name=record.func_name,
                task_id=record.task_id,
                attempt=actor.attempt,
                tags=record.tags,
                trace_context=record.trace_context,
                previous=actor.failed_span,
                instance=persistence.instance_id if persistence is not None else None,
            )
            trace = _modules["opentelemetry.trace"]
            context = _modules["opentelemetry.context"]
            self.otel_token = context.attach(trace.set_span_in_context(self.span))

    def exit(self, error: BaseException | None) -> None:
        if self.span is not None:
            _modules["opentelemetry.context"].detach(self.otel_token)
            self.actor.failed_span = _tracing.end_attempt_span(self.span, error)
        if self.structlog_tokens is not None:
            _modules["structlog.contextvars"].reset_contextvars(**self.structlog_tokens)


async def call_async(actor: Actor, func: Callable[..., Awaitable[Any]], args: Any, kwargs: Any) -> Any:
    """Await `func(*args, **kwargs)` as `actor`'s attempt, with the bindings around it."""
    attempt = _Attempt(actor)
    attempt.enter()
    try:
        result = await func(*args, **kwargs)
    except BaseException as exc:  # re-raised unchanged: only noted on the span
        attempt.exit(exc)
        raise
    attempt.exit(None)
    return result


def call_sync(actor: Actor, func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call `func(*args, **kwargs)` as `actor`'s attempt, with the bindings around it (worker thread)."""
    attempt = _Attempt(actor)
    attempt.enter()
    try:
        result = func(*args, **kwargs)
    except BaseException as exc:  # re-raised unchanged: only noted on the span
        attempt.exit(exc)
        raise
    attempt.exit(None)
    return result
