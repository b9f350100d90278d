"""A task's log lines (`task_log`, from its own scope): an observer `LogEvent` each, and an UPDATED change.

Apart from the runtime because it is the one place a log line becomes an event: it decides once whether
any observer wants what structlog bound in the request and the task (`keep_log_context`), so that a runtime
whose observers do not pays nothing for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._attempt_context import bound_log_values
from ._models import TaskRecord, utcnow
from .observers import LogEvent

if TYPE_CHECKING:
    from ._lifecycle import Lifecycle
    from .observers import ObserverDispatcher


class TaskLogRelay:
    """Relays a task's log lines to the observers and tells the lifecycle its record changed."""

    def __init__(self, dispatcher: ObserverDispatcher, lifecycle: Lifecycle) -> None:
        self.dispatcher = dispatcher
        self.lifecycle = lifecycle
        # Observers that log through structlog get what the request and the task bound there.
        self.keep_log_context = any(o.wants_log_context for o in dispatcher.observers)

    def emit(self, record: TaskRecord, attempt: int, message: str, level: str, extra: dict[str, Any]) -> None:
        """One log line of `record`'s attempt `attempt` (its `logs` already hold it)."""
        if self.dispatcher.active:
            bound = bound_log_values() if self.keep_log_context else None
            self.dispatcher.emit_log(
                LogEvent(
                    record.task_id,
                    record.func_name,
                    message,
                    level,
                    utcnow(),
                    attempt,
                    dict(record.tags),
                    extra,
                    bound or {},
                )
            )
        self.lifecycle.update(record)
