"""Turns supervision events into task changes: what the supervisors report about each task after its start.

The runtime installs a `Tracker` as the observer of its root supervisor (and of each inline run). Each call
names its child by the handle's `key` (the task id); the tracker keeps the per-attempt history of that
record and asks the lifecycle to move it along PENDING -> RUNNING -> terminal.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisors import ChildHandle, ChildState

from ._models import AttemptRecord, TaskRecord, TaskStatus, utcnow
from ._traceback import error_text, format_traceback

if TYPE_CHECKING:
    from ._lifecycle import Lifecycle
    from ._table import TaskTable


class Tracker:
    """The root supervisor's observer (`supervisors.ChildObserver`): applies each moment of a child's life
    to its task record. It is given the child's handle, whose `key` is the task id, not an event object:
    the runtime follows every child, so it takes the cheaper of the two kinds of observer.

    `interrupted(record, reason)` settles a task stopped by shutdown (requeued or INTERRUPTED)."""

    def __init__(
        self, table: TaskTable, lifecycle: Lifecycle, interrupted: Callable[[TaskRecord, str], None]
    ) -> None:
        self.table = table
        self.lifecycle = lifecycle
        self.interrupted = interrupted

    def _record(self, handle: ChildHandle) -> TaskRecord | None:
        task_id = handle.key
        return self.table.get(task_id) if isinstance(task_id, str) else None

    def attempt_started(self, handle: ChildHandle) -> None:
        record = self._record(handle)
        if record is None:
            return
        now = utcnow()
        number = handle.attempts
        if record.status is TaskStatus.PENDING:
            record.start_time = now
            self.lifecycle.move(record, TaskStatus.RUNNING)
        elif record.status is not TaskStatus.RUNNING:
            return  # cancelled while starting: keep the terminal state
        if number > 1:
            record.retries_used = number - 1
            record.logs.append(f"--- Retry {number - 1} ---")
        record.attempts.append(AttemptRecord(number, now))

    def attempt_failed(
        self, handle: ChildHandle, error: BaseException, will_retry: bool, reason: str
    ) -> None:
        record = self._record(handle)
        if record is not None and record.attempts:
            last = record.attempts[-1]
            last.end_time = utcnow()
            last.error = error_text(error)

    def retry_scheduled(self, handle: ChildHandle, delay: float, error: BaseException) -> None:
        record = self._record(handle)
        if record is not None:
            self.lifecycle.update(record)

    def finished(self, handle: ChildHandle) -> None:
        record = self._record(handle)
        if record is None:
            return
        state = handle.state
        if state is ChildState.SUCCEEDED:
            self.lifecycle.finish(record, TaskStatus.SUCCESS)
        elif state is ChildState.FAILED:
            error = handle.error
            stack = format_traceback(error) if error is not None else None
            self.lifecycle.finish(record, TaskStatus.FAILED, error, stack, reason=handle.reason)
            if error is not None:
                # The record keeps the text. The frames the traceback holds refer back to the handle (and the
                # actor), which holds the error: clearing their locals spares every failed task a reference
                # cycle that only a full garbage collection would free.
                traceback.clear_frames(error.__traceback__)
        elif state is ChildState.CANCELLED:
            self.lifecycle.finish(record, TaskStatus.CANCELLED, reason=handle.reason)
        else:
            self.interrupted(record, handle.reason or "shutdown")
