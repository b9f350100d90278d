"""The two events observers receive: a `task_log()` line (`LogEvent`) and a status change (`LifecycleEvent`).

Names, fields, order and defaults are those of fastapi-taskflow 0.5.0 (plain, mutable dataclasses), so
observers written for it work unchanged. `context` is new: what was bound in structlog's contextvars (the
request's values, and for a log line the task's too), for the observers that ask for it
(`TaskObserver.wants_log_context`); empty otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._models import TaskStatus

__all__ = ["LifecycleEvent", "LogEvent"]


@dataclass
class LogEvent:
    """One `task_log(message, level=..., **extra)` call inside a task.

    `message` is the raw text (no timestamp); `timestamp` is an aware UTC datetime; `attempt` is 0-based.
    """

    task_id: str
    func_name: str
    message: str
    level: str
    timestamp: datetime
    attempt: int
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class LifecycleEvent:
    """A task changed status. `error`/`stacktrace` are set when it failed; `duration` once it finished."""

    task_id: str
    func_name: str
    status: TaskStatus
    timestamp: datetime
    attempt: int
    retries_used: int
    duration: float | None = None
    error: str | None = None
    stacktrace: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
