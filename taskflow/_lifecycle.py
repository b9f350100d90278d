"""The one lifecycle of every task: the only code that changes a record's status.

`Lifecycle` owns the status of every record in the live table. Each change is checked against
`ALLOWED_TRANSITIONS`, written to the table (which keeps the per-status counters), and described by one
immutable `TaskChange`, which is handed to every sink in the list the runtime built once: the store writer,
the settlement of finished tasks (actors and metrics), the observers, the listeners (the dashboard bus).
A sink that has nothing to do for a runtime (no store, no observers) is not in the list.

Sinks take a sequence of changes (`take(changes)`). A sink may say which changes it wants (`wants(kind,
status)`, asked once per kind and status when the lifecycle is built): a change no sink wants is not even
built. A sink whose work is not needed at the moment of the change (the listeners: the dashboard's bus) says
`per_tick = True`; while the lifespan runs (`bind_loop` / `unbind_loop`), such sinks get the changes of one
turn of the event loop together, in order (at most `TICK_BATCH_LIMIT` at a time), and at once when no loop
is bound. The other sinks (the store, the settlement, the observers) get each change as it happens, because
what they do is read right after it (a durable task's RUNNING commit gates its body; a request's durable
records are committed before its response).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from ._eventloop import loop_caller, threadsafe_caller
from ._models import TaskRecord, TaskStatus, utcnow
from ._table import TaskTable
from ._traceback import error_text

_P, _R = TaskStatus.PENDING, TaskStatus.RUNNING
_S, _F, _C, _I = TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.INTERRUPTED
_X = TaskStatus.REJECTED

ALLOWED_TRANSITIONS: Mapping[TaskStatus | None, frozenset[TaskStatus]] = {
    # A record enters the table: submitted or resubmitted (PENDING), or adopted from a lost instance,
    # to run again (PENDING) or, when it cannot, settled at once (INTERRUPTED).
    None: frozenset({_P, _I}),
    # PENDING -> PENDING: kept in the store for the next start when the app stops before it ran.
    # PENDING -> FAILED: a child the supervisor fails before its first attempt reported its start.
    # PENDING -> REJECTED: refused at add_task (its queue or the process backlog was full); never runs.
    _P: frozenset({_R, _C, _I, _F, _P, _X}),
    # RUNNING -> PENDING: requeued at shutdown (`requeue_on_interrupt`), run again by the next start.
    _R: frozenset({_S, _F, _C, _I, _P}),
    _S: frozenset(),
    _F: frozenset(),
    _C: frozenset(),
    _I: frozenset(),
    _X: frozenset(),
}
"""Every status a record may move to from its current one (None: it is not in the table yet)."""


TICK_BATCH_LIMIT = 256
"""The most changes the per-tick sinks wait for: a turn of the event loop that makes more (a burst of
requests admitting thousands of tasks) hands them over in batches of this size as it goes."""


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


_new_change = tuple.__new__  # builds a TaskChange in one C call (its generated __new__ is Python code)


class Sink(Protocol):
    """A consumer of task changes. `take` is called on the event loop, or on a worker thread for the
    changes made there (submissions from sync routes, log lines of sync tasks); it must not raise.

    Optional, read once by the lifecycle: `wants(kind, status) -> bool` (the changes it takes; default
    all) and `per_tick = True` (it takes the changes of one turn of the event loop together)."""

    def take(self, changes: Sequence[TaskChange]) -> None: ...


Route = tuple[tuple[Sink, ...], bool]
"""For one kind of change to one status: the sinks that take it at once, and whether per-tick sinks do."""


def _wants(sink: Sink, kind: ChangeKind, status: TaskStatus) -> bool:
    wants: Callable[[ChangeKind, TaskStatus], bool] | None = getattr(sink, "wants", None)
    return True if wants is None else wants(kind, status)


class Lifecycle:
    """The owner of every status change: checks it, writes it to the table, hands it to the sinks."""

    def __init__(self, table: TaskTable, sinks: Sequence[Sink]) -> None:
        self.table = table
        self.sinks = tuple(sinks)
        at_once = [s for s in self.sinks if not getattr(s, "per_tick", False)]
        self._per_tick = tuple(s for s in self.sinks if getattr(s, "per_tick", False))
        # One table per kind, picked by the caller: looking up a plain Enum member in a dict would call
        # its Python-level __hash__ on every change.
        routes = {
            kind: {
                status: (
                    tuple(s for s in at_once if _wants(s, kind, status)),
                    any(_wants(s, kind, status) for s in self._per_tick),
                )
                for status in TaskStatus
            }
            for kind in ChangeKind
        }
        self._on_added = routes[ChangeKind.ADDED]
        self._on_moved = routes[ChangeKind.MOVED]
        self._on_updated = routes[ChangeKind.UPDATED]
        self._on_requeued = routes[ChangeKind.REQUEUED]
        self._pending: list[TaskChange] = []  # changes for the per-tick sinks, not handed over yet
        self._lock = threading.Lock()  # guards `_pending` against worker threads (the loop's own need none)
        self._loop_thread: int | None = None
        self._soon: Callable[[Callable[[], None]], object] | None = None
        self._soon_threadsafe: Callable[[Callable[[], None]], object] | None = None

    # -- batching per turn of the event loop -----------------------------------------------------------

    def bind_loop(self) -> None:
        """From now on, hand the per-tick sinks their changes once per turn of the running event loop."""
        with self._lock:
            self._loop_thread = threading.get_ident()
            self._soon = loop_caller()
            self._soon_threadsafe = threadsafe_caller()

    def unbind_loop(self) -> None:
        """Hand over what is pending, and every later change at once (the lifespan ends)."""
        with self._lock:
            self._loop_thread = self._soon = self._soon_threadsafe = None
        self.flush()

    def flush(self) -> None:
        """Hand the pending changes to the per-tick sinks now, in order."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            for sink in self._per_tick:
                sink.take(batch)

    def _later(self, change: TaskChange) -> None:
        """Queue a change for the per-tick sinks from another thread (at once if no loop is bound)."""
        with self._lock:
            soon = self._soon_threadsafe
            if soon is None:  # no loop bound: at once, in this thread
                batch: Sequence[TaskChange] = (change,)
            else:
                pending = self._pending
                if pending:
                    pending.append(change)
                    return  # a flush is on its way
                pending.append(change)
        if soon is None:
            for sink in self._per_tick:
                sink.take(batch)
            return
        try:
            soon(self.flush)
        except Exception:  # the loop is closing: hand over from here
            self.flush()

    def _emit(
        self,
        kind: ChangeKind,
        routes: dict[TaskStatus, Route],
        record: TaskRecord,
        previous: TaskStatus | None,
    ) -> None:
        status = record.status
        at_once, per_tick = routes[status]
        if not at_once and not per_tick:
            return
        change: TaskChange = _new_change(
            TaskChange, (kind, record.task_id, previous, status, record, time.time())
        )
        if at_once:
            batch = (change,)
            for sink in at_once:
                sink.take(batch)
        if per_tick:
            if threading.get_ident() == self._loop_thread:
                # On the loop's thread only the loop's own callbacks run, flush included: no lock needed.
                pending = self._pending
                if not pending and self._soon is not None:
                    self._soon(self.flush)
                pending.append(change)
                if len(pending) >= TICK_BATCH_LIMIT:
                    self.flush()  # a turn that changes thousands of tasks does not hold every change
            else:
                self._later(change)

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
        self._emit(ChangeKind.ADDED, self._on_added, record, None)
        return None

    def move(self, record: TaskRecord, status: TaskStatus) -> None:
        """Move a record in the table to `status` (IllegalTransition if the table forbids it)."""
        previous = record.status
        if status not in ALLOWED_TRANSITIONS[previous]:
            raise IllegalTransition(f"task {record.task_id}: {previous.value} -> {status.value}")
        self.table.set_status(record, status)
        self._emit(ChangeKind.MOVED, self._on_moved, record, previous)

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
        self._emit(ChangeKind.UPDATED, self._on_updated, record, record.status)

    def requeue(self, record: TaskRecord, reason: str) -> None:
        """Keep a task stopped by shutdown for the next start: PENDING, saved to be run again."""
        previous = record.status
        if TaskStatus.PENDING not in ALLOWED_TRANSITIONS[previous]:
            raise IllegalTransition(f"task {record.task_id}: {previous.value} cannot be requeued")
        record.status_reason = f"requeued: interrupted by {reason}"
        if previous is TaskStatus.RUNNING:
            record.logs.append(f"--- Requeued: interrupted by {reason} ---")
            self.table.set_status(record, TaskStatus.PENDING)
        self._emit(ChangeKind.REQUEUED, self._on_requeued, record, previous)
