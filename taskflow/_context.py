"""What code running inside a task can ask about it: `get_task_context()` and `task_log()`.

The runtime binds each task's actor in a context variable of the task's own context. Context variables
follow the code into helpers, into `await`ed coroutines and into the worker thread of a sync task (anyio
copies the context into it), so both functions work from any code path inside a task.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._models import TaskRecord, utcnow

LEVELS = ("debug", "info", "warning", "error")
_STDLIB_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_outside_logger = logging.getLogger("taskflow.task")


@dataclass
class TaskContext:
    """The running task as seen from inside it: its id, function name, attempt (0-based) and tags; and its
    checkpoint: `checkpoint(state)` saves progress, `last_checkpoint` reads the last one saved."""

    task_id: str
    func_name: str
    attempt: int
    tags: dict[str, str] = field(default_factory=dict)
    _scope: TaskScope | None = field(default=None, repr=False, compare=False)

    def checkpoint(self, state: Any) -> None:
        """Save the task's progress: a JSON-encodable value, kept in its record (and its store, encrypted
        like the arguments when encryption is on). A `requeue_on_interrupt` task cancelled by shutdown keeps
        it, and reads it back from `last_checkpoint` when it runs again. TypeError if not JSON-encodable."""
        if self._scope is None:
            raise RuntimeError("checkpoint() needs the context of a running task (get_task_context())")
        self._scope.save_checkpoint(state)

    @property
    def last_checkpoint(self) -> Any:
        """The last state saved with `checkpoint()` by this task, in this run or before a restart; None if
        it never saved one."""
        return self._scope.load_checkpoint() if self._scope is not None else None


class TaskScope(Protocol):
    """What the runtime binds for a task (its actor): the record to log into, the running attempt (0-based),
    where log events go, and its checkpoint."""

    @property
    def record(self) -> TaskRecord: ...

    @property
    def attempt(self) -> int: ...

    @property
    def on_log(self) -> Callable[[TaskRecord, int, str, str, dict[str, Any]], None]: ...

    def save_checkpoint(self, state: Any) -> None: ...

    def load_checkpoint(self) -> Any: ...


_current: contextvars.ContextVar[TaskScope | None] = contextvars.ContextVar("taskflow_task", default=None)


def get_task_context() -> TaskContext | None:
    """The context of the task this code runs in, or None outside a task."""
    scope = _current.get()
    if scope is None:
        return None
    record = scope.record
    return TaskContext(record.task_id, record.func_name, scope.attempt, dict(record.tags), scope)


def task_log(message: str, *, level: str = "info", **extra: Any) -> None:
    """Add a log line to the current task (record, observers, dashboard).

    `level` is one of debug, info, warning, error (anything else counts as info). `extra` fields reach
    observers as structured data. Outside a task the line goes to the stdlib logger `taskflow.task`.
    """
    level = level.lower() if isinstance(level, str) and level.lower() in LEVELS else "info"
    scope = _current.get()
    if scope is None:
        _outside_logger.log(_STDLIB_LEVELS[level], "%s", message, extra={"taskflow_extra": extra})
        return
    append_log(scope, str(message), level, extra)


def append_log(scope: TaskScope, text: str, level: str, extra: dict[str, Any]) -> None:
    """Add a line to `scope`'s task: what `task_log` does inside a task, and what the parent does with a
    line a process task's worker sent back."""
    scope.record.logs.append(f"{utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')} {text}")
    scope.on_log(scope.record, scope.attempt, text, level, extra)


def bind(scope: TaskScope) -> None:
    """Bind `scope` as the current task in the current context (the runtime does it once per task, in the
    context the task will run in)."""
    _current.set(scope)
