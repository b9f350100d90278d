"""Turns supervision events into task state: the one place where a record changes state after dispatch.

The runtime installs a `Tracker` as the hook of its root supervisor. Each event names its child by `key`
(the task id); the tracker moves that record along PENDING -> RUNNING -> terminal, keeps the per-attempt
history, updates the metrics and fans the change out to observers and listeners.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisors import (
    AttemptFailed,
    AttemptStarted,
    Cancelled,
    Failed,
    Interrupted,
    RetryScheduled,
    Succeeded,
)

from . import _actor as taskflow_actor
from ._models import AttemptRecord, TaskRecord, TaskStatus, utcnow

if TYPE_CHECKING:
    from ._runtime import TaskRuntime


def error_text(error: BaseException) -> str:
    """The record's `error` field: the message, or the exception type when the message is empty."""
    text = str(error)
    return text if text else type(error).__name__


# The actor calls the task's function: the frames down to it (supervisor, anyio's worker thread for a sync
# task, the actor) lead every task's traceback and say nothing about the failure.
_ACTOR_FILE = taskflow_actor.__file__


def format_traceback(error: BaseException) -> str:
    """The traceback, chained causes included, as `traceback.format_exception` writes it, but starting at the
    task's own function (the supervisor's and the actor's frames are left out) and without the `^^^^`
    position markers: computing those parses every frame's source, and made formatting the failures of a
    retry storm 30% of its cost (2.5x slower than this)."""
    tb = start = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _ACTOR_FILE and tb.tb_next is not None:
            start = tb.tb_next  # the task's function, called by the actor
        tb = tb.tb_next
    formatted = traceback.TracebackException(type(error), error, start)
    seen: set[int] = set()
    node: traceback.TracebackException | None = formatted
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        node.stack = traceback.StackSummary.from_list(
            [traceback.FrameSummary(f.filename, f.lineno, f.name, line=f.line) for f in node.stack]
        )
        node = node.__cause__ or node.__context__
    return "".join(formatted.format())


class Tracker:
    """The root supervisor's hook: applies each child event to its task record."""

    def __init__(self, runtime: TaskRuntime) -> None:
        self._runtime = runtime
        self._handlers: dict[type, Callable[[TaskRecord, object], None]] = {
            AttemptStarted: self._attempt_started,
            AttemptFailed: self._attempt_failed,
            RetryScheduled: self._retry_scheduled,
            Succeeded: self._succeeded,
            Failed: self._failed,
            Cancelled: self._cancelled,
            Interrupted: self._interrupted,
        }

    def on_event(self, event: object) -> None:
        """Supervisor hook entry point: route the event to the record it concerns."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        task_id = getattr(event, "key", None)
        record = self._runtime.table.get(task_id) if isinstance(task_id, str) else None
        if record is not None:
            handler(record, event)

    def _attempt_started(self, record: TaskRecord, event: object) -> None:
        assert isinstance(event, AttemptStarted)
        now = utcnow()
        number = event.attempt
        if record.status is TaskStatus.PENDING:
            record.start_time = now
            self._runtime.transition(record, TaskStatus.RUNNING)
        elif record.status is not TaskStatus.RUNNING:
            return  # cancelled while starting: keep the terminal state
        if number > 1:
            record.retries_used = number - 1
            record.logs.append(f"--- Retry {number - 1} ---")
        record.attempts.append(AttemptRecord(number, now))

    def _attempt_failed(self, record: TaskRecord, event: object) -> None:
        assert isinstance(event, AttemptFailed)
        if record.attempts:
            last = record.attempts[-1]
            last.end_time = utcnow()
            last.error = error_text(event.error)

    def _retry_scheduled(self, record: TaskRecord, event: object) -> None:
        assert isinstance(event, RetryScheduled)
        self._runtime.changed(record)

    def _succeeded(self, record: TaskRecord, event: object) -> None:
        self.finish(record, TaskStatus.SUCCESS, None, None)

    def _failed(self, record: TaskRecord, event: object) -> None:
        assert isinstance(event, Failed)
        stack = format_traceback(event.error)
        self.finish(record, TaskStatus.FAILED, event.error, stack, reason=event.reason)

    def _cancelled(self, record: TaskRecord, event: object) -> None:
        assert isinstance(event, Cancelled)
        self.finish(record, TaskStatus.CANCELLED, None, None, reason=event.reason)

    def _interrupted(self, record: TaskRecord, event: object) -> None:
        assert isinstance(event, Interrupted)
        self._runtime.on_interrupted(record, event.reason)

    def finish(
        self,
        record: TaskRecord,
        status: TaskStatus,
        error: BaseException | None = None,
        stacktrace: str | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        """Settle a record in a terminal state (a no-op if it is already settled)."""
        if record.status.is_terminal:
            return  # already settled (e.g. cancelled through the API before the child noticed)
        now = utcnow()
        if record.attempts and record.attempts[-1].end_time is None:
            record.attempts[-1].end_time = now
            if error is not None and status is TaskStatus.FAILED:
                record.attempts[-1].error = error_text(error)
        record.end_time = now
        if error is not None:
            record.error = error_text(error)
            record.stacktrace = stacktrace
        record.status_reason = reason
        self._runtime.transition(record, status)
