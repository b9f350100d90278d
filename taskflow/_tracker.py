"""Turns supervision events into task state: the one place where a record changes state after dispatch.

The runtime installs a `Tracker` as the observer of its root supervisor. Each call names its child by the
handle's `key` (the task id); the tracker moves that record along PENDING -> RUNNING -> terminal, keeps the
per-attempt history, updates the metrics and fans the change out to observers and listeners.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

from supervisors import ChildHandle, ChildState

from ._models import AttemptRecord, TaskRecord, TaskStatus, utcnow
from ._traceback import error_text, format_traceback

if TYPE_CHECKING:
    from ._runtime import TaskRuntime


class Tracker:
    """The root supervisor's observer (`supervisors.ChildObserver`): applies each moment of a child's life
    to its task record. It is given the child's handle, whose `key` is the task id, not an event object:
    the runtime follows every child, and building events for it cost 2.5 µs each."""

    def __init__(self, runtime: TaskRuntime) -> None:
        self._runtime = runtime

    def _record(self, handle: ChildHandle) -> TaskRecord | None:
        task_id = handle.key
        return self._runtime.table.get(task_id) if isinstance(task_id, str) else None

    def attempt_started(self, handle: ChildHandle) -> None:
        record = self._record(handle)
        if record is None:
            return
        now = utcnow()
        number = handle.attempts
        if record.status is TaskStatus.PENDING:
            record.start_time = now
            self._runtime.transition(record, TaskStatus.RUNNING)
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
            self._runtime.changed(record)

    def finished(self, handle: ChildHandle) -> None:
        record = self._record(handle)
        if record is None:
            return
        state = handle.state
        if state is ChildState.SUCCEEDED:
            self.finish(record, TaskStatus.SUCCESS)
        elif state is ChildState.FAILED:
            error = handle.error
            stack = format_traceback(error) if error is not None else None
            self.finish(record, TaskStatus.FAILED, error, stack, reason=handle.reason)
            if error is not None:
                # The record keeps the text. The frames the traceback holds refer back to the handle (and the
                # actor), which holds the error: clearing their locals spares every failed task a reference
                # cycle that only a full garbage collection would free.
                traceback.clear_frames(error.__traceback__)
        elif state is ChildState.CANCELLED:
            self.finish(record, TaskStatus.CANCELLED, reason=handle.reason)
        else:
            self._runtime.on_interrupted(record, handle.reason or "shutdown")

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
