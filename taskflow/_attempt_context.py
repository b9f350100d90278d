"""What surrounds each attempt of a task for the logging and tracing libraries the application uses.

Around the user's function (inside the task's own context: the event loop for `async def` tasks, the
worker thread for `def` ones) an attempt gets:

- structlog: `task_id`, `func_name`, `attempt` (0-based) and `tags` bound in structlog's contextvars
  (`structlog.contextvars.bind_contextvars` the first time, then the same variables set directly), reset
  afterwards, so every line the task logs through structlog carries them next to what the request bound;
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
# structlog's ContextVar for each key an attempt binds, taken from the tokens of the first binding (a
# token names its variable): later attempts set and reset them directly, without structlog's per-key name
# building and lookups. Kept with the module they came from, in case structlog is imported anew.
_structlog_vars: tuple[Any, tuple[contextvars.ContextVar[Any], ...]] = (None, ())


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


_KEYS = ("task_id", "func_name", "attempt", "tags")


def _bind(module: Any, values: tuple[Any, ...]) -> tuple[contextvars.Token[Any], ...]:
    """Bind `values` (in `_KEYS` order) as structlog's `bind_contextvars` would; the tokens reset them."""
    global _structlog_vars
    cached_module, variables = _structlog_vars
    if cached_module is module:
        return tuple([var.set(value) for var, value in zip(variables, values, strict=True)])
    tokens = module.bind_contextvars(**dict(zip(_KEYS, values, strict=True)))
    ordered = tuple(tokens[key] for key in _KEYS)
    _structlog_vars = (module, tuple(token.var for token in ordered))
    return ordered


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
        module = _modules.get("structlog.contextvars")
        if module is not None:
            values = (record.task_id, record.func_name, actor.attempt, dict(record.tags))
            self.structlog_tokens = _bind(module, values)
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
            for token in self.structlog_tokens:
                token.var.reset(token)


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
