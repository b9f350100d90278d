"""What users and the HTTP API do to tasks: look up, list, cancel, resubmit, read metrics, delete history.

Kept apart from the life of a task itself. With a store, lookups fall back to it for records no longer in
memory, and listings are served by the store's indexed queries.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from ._exceptions import InvalidTaskState, PayloadError, StoreUnavailable, TaskflowError, TaskNotFound
from ._metrics import store_figures
from ._models import TaskRecord, TaskStatus, new_task_id, utcnow
from ._tracing import current_traceparent
from ._unstored import NOT_RERUNNABLE, has_unstored
from .stores import Page

if TYPE_CHECKING:
    from ._admission import Admission
    from ._launcher import Launcher
    from ._lifecycle import Lifecycle
    from ._metrics import MetricsRecorder, TaskManagerStatistics
    from ._persistence import Persistence
    from ._registry import TaskRegistry
    from ._store_gate import StoreGate
    from ._table import TaskTable

DEFAULT_STORE_PAGE = 1000
"""Listings from a store are paged even without `limit` (history can hold millions of tasks)."""

STORE_READ_TIMEOUT = 5.0
"""Seconds a lookup, listing or metrics read may wait for the store (queued writes included) before the
store is reported unavailable: a paused or unreachable server must not hold a request for long."""


@asynccontextmanager
async def store_read() -> AsyncIterator[None]:
    """Turn a store that fails or does not answer within `STORE_READ_TIMEOUT` into `StoreUnavailable`.

    Errors about the request itself (a bad cursor or filter, unreadable arguments) pass through unchanged.
    """
    try:
        with anyio.fail_after(STORE_READ_TIMEOUT):
            yield
    except (TaskflowError, ValueError, TypeError, LookupError):
        raise
    except Exception as exc:  # the store's own errors: connection refused, timeouts, a locked file...
        raise StoreUnavailable(f"the task store is unavailable: {type(exc).__name__}: {exc}") from exc


RETRY_KEY_PREFIX = "retry-of:"
"""The idempotency key of a retry is this prefix and the id of the task it retries."""
RETRY_OF_TAG = "retry_of"
"""The tag linking a retry to the task it retries."""


class Resubmission(NamedTuple):
    """What a retry gave: the id of the task that runs it, its record when this instance has it, and
    whether it was created now (False: an earlier retry of the same task holds it)."""

    task_id: str
    record: TaskRecord | None
    created: bool


class TaskActions:
    """Lookups and actions on tasks, for the public methods of `TaskRuntime` and the HTTP API."""

    def __init__(
        self,
        *,
        registry: TaskRegistry,
        table: TaskTable,
        lifecycle: Lifecycle,
        launcher: Launcher,
        admission: Admission,
        gate: StoreGate,
        metrics: MetricsRecorder,
        persistence: Persistence | None,
    ) -> None:
        self.registry = registry
        self.table = table
        self.lifecycle = lifecycle
        self.launcher = launcher  # its supervision tree (statistics) and its tasks not settled (cancel)
        self.admission = admission  # retries are admitted as new tasks
        self.gate = gate  # a retry's key is claimed in the store
        self.metrics_recorder = metrics
        self.persistence = persistence

    def statistics(self) -> TaskManagerStatistics:
        """A frozen snapshot of counts, durations, throughput and the supervision tree."""
        counts = self.table.counts()
        root = self.launcher.root
        return self.metrics_recorder.snapshot(
            counts[TaskStatus.PENDING],
            counts[TaskStatus.RUNNING],
            root.statistics() if root is not None else None,
        )

    def get(self, task_id: str) -> TaskRecord:
        """The in-memory record of `task_id`; TaskNotFound when unknown here."""
        record = self.table.get(task_id) if isinstance(task_id, str) else None
        if record is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return record

    async def find(self, task_id: str) -> TaskRecord:
        """The record of `task_id`, from memory or else from the store; TaskNotFound when unknown."""
        record = self.table.get(task_id) if isinstance(task_id, str) else None
        persistence = self.persistence
        if record is None and persistence is not None and persistence.active:
            async with store_read():
                try:
                    record = await persistence.store.get(task_id)
                except PayloadError:  # arguments unreadable: still show the record, without them
                    page = await persistence.store.query(task_id_prefix=task_id, limit=1)
                    record = page.records[0] if page.records and page.records[0].task_id == task_id else None
        if record is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return record

    def instance_of(self, record: TaskRecord) -> str | None:
        """The id of the instance that runs (or ran) `record`: this one for a record kept in memory (when
        there is a store), else the owner the store gave it (None without a store)."""
        persistence = self.persistence
        if persistence is not None and persistence.active and self.table.get(record.task_id) is record:
            return persistence.instance_id
        return record.instance

    async def find_soon(self, task_id: str) -> TaskRecord:
        """`find`, waiting up to `STORE_READ_TIMEOUT` for a task another instance claimed but has not
        written yet (its store write is queued there). Without a running store, nothing to wait for."""
        persistence = self.persistence
        if persistence is None or not persistence.active:
            return await self.find(task_id)
        with anyio.move_on_after(STORE_READ_TIMEOUT):
            while True:
                try:
                    return await self.find(task_id)
                except TaskNotFound:
                    await anyio.sleep(0.05)
        return await self.find(task_id)

    def query(self, **filters: Any) -> Page:
        """In-memory records, filtered and cursor-paged, newest first (see TaskTable.query)."""
        return self.table.query(**filters)

    async def query_history(self, *, limit: int | None = None, **filters: Any) -> Page:
        """Every task (the store's history when there is one), filtered and cursor-paged, newest first."""
        persistence = self.persistence
        if persistence is None or not persistence.active:
            return self.table.query(limit=limit, **filters)
        async with store_read():
            await persistence.sync()
            return await persistence.store.query(limit=limit or DEFAULT_STORE_PAGE, **filters)

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a pending task (it will never run) or a running one; InvalidTaskState otherwise."""
        record = self.get(task_id)
        if record.status.is_terminal:
            raise InvalidTaskState(
                f"task {task_id} is {record.status.value}: only pending or running tasks can be cancelled"
            )
        actor = self.launcher.actors.get(task_id)
        handle = actor.handle if actor is not None else None
        if record.status is TaskStatus.RUNNING and handle is None:
            raise InvalidTaskState(
                f"task {task_id} runs inline (no app lifespan is running), so it cannot be cancelled"
            )
        if handle is not None and not handle.cancel(reason="cancelled"):
            return record  # it finished in the meantime: its own outcome stands
        self.lifecycle.finish(record, TaskStatus.CANCELLED, reason="cancelled")
        return record

    def resubmit(self, task_id: str, *, record: TaskRecord | None = None) -> Resubmission:
        """Create a new PENDING task repeating a FAILED or INTERRUPTED one; the caller starts it when
        `created` (the HTTP API's "retry", not to be mixed up with the policy's retries of one task).

        The new task holds the idempotency key `retry-of:<id>` (and the tag `retry_of`): while an earlier
        retry of the same task holds it (pending, running or succeeded), that task's id is returned instead
        and nothing is created, atomically. A retry that fails, is cancelled or interrupted releases it.
        `record` lets the caller pass a record found in the store (see `find`).
        """
        if record is None:
            record = self.get(task_id)
        if record.status not in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
            raise InvalidTaskState(
                f"task {task_id} is {record.status.value}: only failed or interrupted tasks can be retried"
            )
        if has_unstored(record.args, record.kwargs):
            raise InvalidTaskState(f"task {task_id} cannot be retried: {NOT_RERUNNABLE}")
        definition = self.registry.get(record.func_name)
        new = TaskRecord(
            task_id=new_task_id(),
            func_name=definition.name,
            status=TaskStatus.PENDING,
            args=record.args,
            kwargs=dict(record.kwargs),
            created_at=utcnow(),
            idempotency_key=RETRY_KEY_PREFIX + record.task_id,
            tags={**record.tags, RETRY_OF_TAG: record.task_id},
            encrypted_payload=record.encrypted_payload,
            # Linked to the request asking for the retry when it is traced, else to the original's trace.
            trace_context=current_traceparent() or record.trace_context,
        )
        holder = self.admission.accept_unless_key_held(new, definition, contextvars.copy_context())
        if holder is not None:
            return Resubmission(holder, self.table.get(holder), False)
        self.admission.place(new.task_id, definition)  # the retry waits in its function's queue, if any
        return Resubmission(new.task_id, new, True)

    async def retry(self, task_id: str, *, record: TaskRecord | None = None) -> Resubmission:
        """`resubmit`, then claim the new task's key in the store, so that concurrent retries of one task on
        every instance sharing it make one run: a loser's record is cancelled unrun and the winner's id
        returned. The caller starts the task when `created`."""
        if record is None:
            record = await self.find(task_id)
        run = self.resubmit(task_id, record=record)
        if run.record is None:
            return run  # held by a retry known from the store's key feed
        # Also for a retry found in memory: it may be another request's, still to lose its own claim.
        holder = await self.gate.claim_key(run.record)
        if holder is None:
            return run
        if run.created:
            self.gate.cancel_duplicate(run.record, holder)
        return Resubmission(holder, self.table.get(holder), False)

    async def metrics(self) -> dict[str, Any]:
        """The `/tasks/metrics` JSON; with a store, the counts cover the whole shared history.

        When the store is unavailable, the figures are this process's and `store.available` is False.
        """
        data = self.statistics().to_metrics()
        persistence = self.persistence
        if persistence is not None and persistence.active:
            error = None
            try:
                async with store_read():
                    await persistence.sync()
                    shared = await store_figures(persistence.store)  # every instance's tasks, not only ours
                data.update(shared)
            except StoreUnavailable as exc:
                error = str(exc)
            writer = persistence.statistics()
            if writer is not None:
                data["store"] = {
                    "available": error is None,
                    "error": error,
                    "queued": writer.queued,
                    "batches": writer.batches,
                    "records_written": writer.records_written,
                    "failures": writer.failures,
                    "retrying": writer.retrying,
                    "last_error": writer.last_error,
                }
        return data

    async def delete_history(self, cutoff: datetime) -> dict[str, int]:
        """Forget finished tasks that ended before `cutoff`, in memory and in the store."""
        in_memory = self.table.remove(self.table.ended_before(cutoff))
        in_store = 0
        persistence = self.persistence
        if persistence is not None and persistence.active:
            async with store_read():
                await persistence.sync()
                in_store = await persistence.store.delete_before(cutoff)
        return {"deleted": max(in_store, in_memory), "store": in_memory, "backend": in_store}
