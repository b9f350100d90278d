"""The one lifecycle of every task: the only code that changes a record's status.

`Lifecycle` owns the status of every record in the live table. Each change is checked against
`ALLOWED_TRANSITIONS`, written to the table (which keeps the per-status counters), and described by one
immutable `TaskChange`, which is handed to every sink in the list the runtime built once: the store writer,
the settlement of finished tasks (actors and metrics), the observers, the listeners (the dashboard bus).
A sink that has nothing to do for a runtime (no store, no observers) is not in the list.

Sinks take a sequence of changes (`take(changes)`): the lifecycle hands over each change as it happens, and
a producer with many changes at once (adoption, shutdown) hands them over together; a sink that can batch
(the observer dispatcher, the dashboard bus) queues them and does its work on its own schedule.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from ._models import TaskRecord, TaskStatus, utcnow
from ._table import TaskTable
from ._traceback import error_text

_P, _R = TaskStatus.PENDING, TaskStatus.RUNNING
_S, _F, _C, _I = TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.INTERRUPTED

ALLOWED_TRANSITIONS: Mapping[TaskStatus | None, frozenset[TaskStatus]] = {
    # A record enters the table: submitted or resubmitted (PENDING), or adopted from a lost instance,
    # to run again (PENDING) or, when it cannot, settled at once (INTERRUPTED).
    None: frozenset({_P, _I}),
    # PENDING -> PENDING: kept in the store for the next start when the app stops before it ran.
    # PENDING -> FAILED: a child the supervisor fails before its first attempt reported its start.
    _P: frozenset({_R, _C, _I, _F, _P}),
    # RUNNING -> PENDING: requeued at shutdown (`requeue_on_interrupt`), run again by the next start.
    _R: frozenset({_S, _F, _C, _I, _P}),
    _S: frozenset(),
    _F: frozenset(),
    _C: frozenset(),
    _I: frozenset(),
}
"""Every status a record may move to from its current one (None: it is not in the table yet)."""


class IllegalTransition(RuntimeError):
    """An internal error: some code asked for a status change that `ALLOWED_TRANSITIONS` forbids."""


class ChangeKind(enum.Enum):
    """What a `TaskChange` reports."""

    ADDED = "added"  # the record entered the table (previous is None)
    MOVED = "moved"  # its status moved
    UPDATED = "updated"  # same status, new content: a retry scheduled, a log line
    REQUEUED = "requeued"  # stopped by shutdown and kept PENDING in the store for the next start


class TaskChange(NamedTuple):
    """One change of one task, as every sink receives it (immutable).

    `record` is the live record it applies to (it may have changed again since); `at` is the wall-clock
    time of the change in seconds since the epoch. A named tuple, not a frozen dataclass: every task makes
    several of these, and a tuple is the cheapest immutable object to build.
    """

    kind: ChangeKind
    task_id: str
    previous: TaskStatus | None
    status: TaskStatus
    record: TaskRecord
    at: float


class Sink(Protocol):
    """A consumer of task changes. `take` is called on the event loop, or on a worker thread for the
    changes made there (submissions from sync routes, log lines of sync tasks); it must not raise."""

    def take(self, changes: Sequence[TaskChange]) -> None: ...


class Lifecycle:
    """The owner of every status change: checks it, writes it to the table, hands it to the sinks."""

    def __init__(self, table: TaskTable, sinks: Sequence[Sink]) -> None:
        self.table = table
        self.sinks = tuple(sinks)

    def _emit(self, kind: ChangeKind, record: TaskRecord, previous: TaskStatus | None) -> None:
        batch = (TaskChange(kind, record.task_id, previous, record.status, record, time.time()),)
        for sink in self.sinks:
            sink.take(batch)

    def admit(
        self, record: TaskRecord, *, status: TaskStatus | None = None, unless_key_held: bool = False
    ) -> str | None:
        """Add a new record to the table, in `status` if given (an adopted record comes in the status it had
        in the store). With `unless_key_held`, atomically, only if no non-failed task holds its idempotency
        key: that task's id is returned instead, and nothing changes."""
        if status is not None:
            if status not in ALLOWED_TRANSITIONS[None]:
                raise IllegalTransition(f"a task cannot enter the table as {status.value}")
            record.status = status  # not in the table yet: nothing else has seen the record
        if record.status not in ALLOWED_TRANSITIONS[None]:
            raise IllegalTransition(f"a task cannot enter the table as {record.status.value}")
        if unless_key_held:
            holder = self.table.add_unless_key_held(record)
            if holder is not None:
                return holder
        else:
            self.table.add(record)
        self._emit(ChangeKind.ADDED, record, None)
        return None

    def move(self, record: TaskRecord, status: TaskStatus) -> None:
        """Move a record in the table to `status` (IllegalTransition if the table forbids it)."""
        previous = record.status
        if status not in ALLOWED_TRANSITIONS[previous]:
            raise IllegalTransition(f"task {record.task_id}: {previous.value} -> {status.value}")
        self.table.set_status(record, status)
        self._emit(ChangeKind.MOVED, record, previous)

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
        self.move(record, status)

    def update(self, record: TaskRecord) -> None:
        """Report new content of a record whose status did not change (a retry scheduled, a log line)."""
        self._emit(ChangeKind.UPDATED, record, record.status)

    def requeue(self, record: TaskRecord, reason: str) -> None:
        """Keep a task stopped by shutdown for the next start: PENDING, saved to be run again."""
        previous = record.status
        if TaskStatus.PENDING not in ALLOWED_TRANSITIONS[previous]:
            raise IllegalTransition(f"task {record.task_id}: {previous.value} cannot be requeued")
        record.status_reason = f"requeued: interrupted by {reason}"
        if previous is TaskStatus.RUNNING:
            record.logs.append(f"--- Requeued: interrupted by {reason} ---")
            self.table.set_status(record, TaskStatus.PENDING)
        self._emit(ChangeKind.REQUEUED, record, previous)
