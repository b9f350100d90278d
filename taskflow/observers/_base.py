"""The observer protocol (`TaskObserver`), its level rules, and `LoggerChain`.

Levels order as debug < info < warning < error; an unknown level counts as info. Lifecycle events have a
level by status: pending/running/success are info, failed is error, interrupted and cancelled are warning.
`flush()` is new over fastapi-taskflow 0.5.0: the dispatcher calls it after each batch of events, so an
observer that writes somewhere slow can buffer in `on_log` and write once per batch.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable

from .._models import TaskStatus
from ._events import LifecycleEvent, LogEvent

__all__ = ["LoggerChain", "TaskObserver"]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
LIFECYCLE_LEVELS = {
    TaskStatus.PENDING: "info",
    TaskStatus.RUNNING: "info",
    TaskStatus.SUCCESS: "info",
    TaskStatus.FAILED: "error",
    TaskStatus.INTERRUPTED: "warning",
    TaskStatus.CANCELLED: "warning",
}

log = logging.getLogger("taskflow.observers")


def normalize_level(level: str) -> str:
    """The level's canonical name; an unknown one is "info" (as fastapi-taskflow does)."""
    return level if level in LEVELS else "info"


def lifecycle_level(event: LifecycleEvent) -> str:
    """The level a lifecycle event is logged at (see the module docstring)."""
    return LIFECYCLE_LEVELS.get(event.status, "info")


class TaskObserver(abc.ABC):  # noqa: B024  (0.5.0 compatibility: an ABC whose every hook is optional)
    """Base class for anything that wants task log lines and status changes.

    Override the hooks you need; each is a no-op by default. Hooks run in taskflow's observer task, never
    inside the task itself, so a slow hook delays only this observer.
    """

    # Class-level defaults keep `_should_log` working for subclasses that forget `super().__init__()`.
    min_level: str = "info"
    #: True when the observer reads `event.context` (what structlog's contextvars held in the request and
    #: the task): taskflow collects it only when some observer wants it.
    wants_log_context: bool = False
    _threshold: int = LEVELS["info"]

    def __init__(self, min_level: str = "info") -> None:
        level = min_level.lower() if isinstance(min_level, str) else min_level
        if level not in LEVELS:
            raise ValueError(f"min_level must be one of {', '.join(LEVELS)}; got {min_level!r}")
        self.min_level = level
        self._threshold = LEVELS[level]

    def _should_log(self, level: str) -> bool:
        """True when a line at `level` passes this observer's `min_level`."""
        return LEVELS.get(level, 20) >= self._threshold

    def _should_log_lifecycle(self, event: LifecycleEvent) -> bool:
        """True when the status change passes `min_level` (failed: error; interrupted, cancelled: warning)."""
        return LEVELS[lifecycle_level(event)] >= self._threshold

    async def on_log(self, event: LogEvent) -> None:  # noqa: B027  (optional hook, a no-op)
        """Called for each `task_log()` line."""

    async def on_lifecycle(self, event: LifecycleEvent) -> None:  # noqa: B027  (optional hook, a no-op)
        """Called for each status change."""

    async def startup(self) -> None:  # noqa: B027  (optional hook, a no-op)
        """Called once when the app starts, before any event."""

    async def flush(self) -> None:  # noqa: B027  (optional hook, a no-op)
        """Called after each batch of events; buffering observers write here."""

    async def close(self) -> None:  # noqa: B027  (optional hook, a no-op)
        """Called once when the app stops, after the last event."""


class LoggerChain(TaskObserver):
    """Hands each event to several observers in order; one observer's exception never reaches the others."""

    def __init__(self, loggers: Iterable[TaskObserver]) -> None:
        super().__init__(min_level="debug")
        self._loggers = list(loggers)
        self.wants_log_context = any(o.wants_log_context for o in self._loggers)

    async def _each(self, hook: str, *args: object) -> None:
        for observer in self._loggers:
            try:
                await getattr(observer, hook)(*args)
            except Exception:
                log.exception("observer %r failed in %s", observer, hook)

    async def on_log(self, event: LogEvent) -> None:
        await self._each("on_log", event)

    async def on_lifecycle(self, event: LifecycleEvent) -> None:
        await self._each("on_lifecycle", event)

    async def startup(self) -> None:
        await self._each("startup")

    async def flush(self) -> None:
        await self._each("flush")

    async def close(self) -> None:
        await self._each("close")
