"""fastapi-taskflow 0.5.0's `TaskStore` (what `task_manager.store` was), over the table and the lifecycle.

Code written for 0.5.0 reads and writes task records through `task_manager.store`: `create`, `get`, `list`,
`update`, `append_log`, `find_by_idempotency_key`, `restore`, `clear`. This facade keeps those signatures and
return shapes; every change goes through the task lifecycle (`Lifecycle.admit`, `move`, `update`), so
counters, metrics, observers, the store writer and the dashboard see it as they see any other change.

Where 0.5.0 let a call corrupt state, this raises instead (docs/migration.md, "TaskManager.store"):
`create` refuses an id already in use (0.5.0 silently replaced the live record), `update` refuses unknown
fields, `created_at`, a status change of a task the runtime is running (cancel it instead) and a status
change no task can make (`ALLOWED_TRANSITIONS`: a pending record goes to running before it succeeds),
and takes naive datetimes as UTC (0.5.0 mixed naive and aware times and crashed computing durations).
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from ._exceptions import InvalidTaskState
from ._lifecycle import ALLOWED_TRANSITIONS
from ._models import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from ._lifecycle import Lifecycle
    from ._table import TaskTable

_FIELDS = frozenset(f.name for f in dataclasses.fields(TaskRecord))
_FIXED = frozenset({"created_at"})  # the table keeps records in creation order
_TIMES = frozenset({"start_time", "end_time"})


class CompatTaskStore:
    """The in-memory task records, with fastapi-taskflow 0.5.0's `TaskStore` methods.

    Obtained as `task_manager.store`; not constructed by users.
    """

    def __init__(self, table: TaskTable, lifecycle: Lifecycle) -> None:
        self._table = table
        self._lifecycle = lifecycle
        # Ids of the records this facade created: their status is the caller's to set (no task runs them).
        self._created: set[str] = set()
        self._lock = threading.Lock()

    # -- mutations -------------------------------------------------------------------------------------

    def create(
        self,
        task_id: str,
        func_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        idempotency_key: str | None = None,
        tags: dict[str, str] | None = None,
        encrypted_payload: bytes | None = None,
    ) -> TaskRecord:
        """Add a new PENDING record and return it. Nothing runs it: `add_task` is what enqueues work.

        ValueError if `task_id` is already in use.
        """
        if not isinstance(task_id, str) or not task_id:
            raise TypeError(f"task_id must be a non-empty str, got {task_id!r}")
        if not isinstance(func_name, str):
            raise TypeError(f"func_name must be a str, got {type(func_name).__name__}")
        record = TaskRecord(
            task_id=task_id,
            func_name=func_name,
            status=TaskStatus.PENDING,
            args=tuple(args),
            kwargs=dict(kwargs),
            idempotency_key=idempotency_key,
            tags=dict(tags) if tags else {},
            encrypted_payload=encrypted_payload,
        )
        with self._lock:
            if self._table.get(task_id) is not None:
                raise ValueError(f"a task with id {task_id!r} already exists")
            self._lifecycle.admit(record)
            self._created.add(task_id)
        return record

    def update(self, task_id: str, **fields: Any) -> TaskRecord | None:
        """Set fields of a record in place and return it; None if `task_id` is unknown.

        A `status` change goes through the lifecycle (counters, metrics, lifecycle events), after the other
        fields are set, so an event for the new state carries them (`error`, `end_time` ...).
        """
        unknown = sorted(set(fields) - _FIELDS)
        if unknown:
            raise TypeError(f"TaskRecord has no field(s) {', '.join(unknown)}")
        fixed = sorted(set(fields) & _FIXED)
        if fixed:
            raise TypeError(f"{', '.join(fixed)} cannot be changed after a record is created")
        record = self._own(task_id)
        if record is None:
            return None
        status = fields.pop("status", None)
        if status is not None:
            status = TaskStatus(status)  # accepts the enum or its value ("failed"); ValueError otherwise
            if status is not record.status and not self._may_set_status(record):
                raise InvalidTaskState(
                    f"task {task_id} is {record.status.value} and run by taskflow: its status is not "
                    "set by hand; use task_manager.cancel() to stop it"
                )
            if (
                status is not record.status
                and status not in ALLOWED_TRANSITIONS[record.status]
                and not self._may_step_through_running(record, status)
            ):
                raise InvalidTaskState(
                    f"task {task_id} cannot go from {record.status.value} to {status.value} "
                    "(a pending task runs before it finishes; a finished one stays finished)"
                )
        for name, value in fields.items():
            if name in _TIMES and isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            setattr(record, name, value)
        if status is not None and status is not record.status:
            if self._may_step_through_running(record, status):
                self._lifecycle.move(record, TaskStatus.RUNNING)  # what the caller's own job did first
            self._lifecycle.move(record, status)
            if status.is_terminal:
                with self._lock:
                    self._created.discard(task_id)
        else:
            self._lifecycle.update(record)
        return record

    def append_log(self, task_id: str, message: str) -> None:
        """Append a line to a record's logs (ignored for an unknown id, as in 0.5.0)."""
        record = self._own(task_id)
        if record is None:
            return
        record.logs.append(str(message))
        self._lifecycle.update(record)

    def restore(self, record: TaskRecord) -> None:
        """Insert a record read from a snapshot, unless its id is already in memory (the live one wins)."""
        if not isinstance(record, TaskRecord):
            raise TypeError(f"restore() needs a TaskRecord, got {type(record).__name__}")
        with self._lock:
            if self._table.get(record.task_id) is None:
                self._table.add(record)  # as in 0.5.0: restored as it was, no change reported

    def clear(self) -> None:
        """Forget every finished record. Pending and running tasks keep theirs (their work is not lost)."""
        table = self._table
        table.remove([record.task_id for record in table.records() if record.status.is_terminal])

    # -- reads -----------------------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord | None:
        """The record of `task_id`, or None."""
        return self._table.get(task_id) if isinstance(task_id, str) else None

    def list(self) -> list[TaskRecord]:
        """A snapshot list of every record in memory, oldest first."""
        return self._table.records()

    def find_by_idempotency_key(self, key: str) -> TaskRecord | None:
        """The task holding `key` (not failed, interrupted or cancelled), or None."""
        holder = self._table.key_holder(key)
        return self._table.get(holder) if holder is not None else None

    # -- helpers ---------------------------------------------------------------------------------------

    def _own(self, task_id: str) -> TaskRecord | None:
        """The table's own record object (the one changes must go to); None if unknown.

        The table rebuilds an archived (packed) finished record on every read, so two reads give two objects:
        a change to either would be lost, and a status change would skew the table's counters.
        """
        record = self.get(task_id)
        if record is not None and self._table.get(task_id) is not record:
            raise InvalidTaskState(f"task {task_id} finished long ago: its record is archived and read-only")
        return record

    def _may_step_through_running(self, record: TaskRecord, status: TaskStatus) -> bool:
        # A record created here is driven by the caller, who may mark it finished while it is still
        # PENDING (0.5.0 allowed it): it passes through RUNNING, as every task does.
        return (
            record.status is TaskStatus.PENDING
            and status.is_terminal
            and status not in ALLOWED_TRANSITIONS[TaskStatus.PENDING]
            and self._may_set_status(record)
        )

    def _may_set_status(self, record: TaskRecord) -> bool:
        with self._lock:
            created_here = record.task_id in self._created
        return created_here or record.status.is_terminal

    # -- the dashboard's stream plumbing in 0.5.0 ------------------------------------------------------

    def add_subscriber(self) -> NoReturn:
        """Not provided: 0.5.0's dashboard stream queue. Follow changes with a `TaskObserver`."""
        raise NotImplementedError(_NO_SUBSCRIBERS)

    def remove_subscriber(self, queue: object) -> NoReturn:
        """Not provided: see `add_subscriber`."""
        raise NotImplementedError(_NO_SUBSCRIBERS)


_NO_SUBSCRIBERS = (
    "TaskStore.add_subscriber()/remove_subscriber() fed fastapi-taskflow's dashboard stream (asyncio "
    "queues); taskflow's stream works differently. To follow task changes use "
    "an observer: TaskManager(loggers=[...]) with a taskflow.TaskObserver"
)
