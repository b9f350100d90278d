"""The runtime's lifespan: `running()`, shutdown settlements, and adopting tasks of lost instances.

A mixin of `TaskRuntime`. `running()` opens the task group that the supervision tree, the observer
dispatcher and the store's writer live in; on exit it drains, cancels, and settles every task (kept for the
next start when it may run again, else INTERRUPTED) before the store is closed.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from supervisors import Policy, Supervisor

from ._codec import UnstoredCallArgs
from ._models import TaskRecord, TaskStatus, utcnow
from ._persistence import recovery_decision
from .observers import LogEvent
from .stores import RecoveredTask

_store_log = logging.getLogger("taskflow.store")
STORE_EVENT_NAME = "taskflow.store"
"""The `func_name` of the LogEvents that report the state of the task store to observers."""

if TYPE_CHECKING:
    from ._actor import Actor
    from ._metrics import MetricsRecorder
    from ._persistence import Persistence
    from ._registry import TaskDefinition, TaskRegistry
    from ._table import TaskTable
    from ._tracker import Tracker
    from .observers import ObserverDispatcher


class TaskLifespan:
    """Lifespan and settlement of tasks (mixed into `TaskRuntime`, which provides what is declared here)."""

    table: TaskTable
    registry: TaskRegistry
    max_concurrent_tasks: int | None
    max_sync_threads: int | None
    shutdown_grace: float
    checkpoint_timeout: float
    requeue_pending: bool
    _persistence: Persistence | None
    _live: dict[str, Actor]
    _tracker: Tracker
    _metrics: MetricsRecorder
    _dispatcher: ObserverDispatcher
    _root: Supervisor | None
    _supervisors: dict[str, Supervisor]

    def _accept(self, record: TaskRecord, definition: TaskDefinition, context: contextvars.Context) -> None:
        raise NotImplementedError

    def _start(self, record: TaskRecord, live: Actor) -> None:
        raise NotImplementedError

    def changed(self, record: TaskRecord) -> None:
        raise NotImplementedError

    @property
    def is_persistent(self) -> bool:
        """True while a store is open (between the start and the end of `running()`)."""
        return self._persistence is not None and self._persistence.active

    def refuse(self, record: TaskRecord, reason: str) -> None:
        """Withdraw an accepted task that never started (e.g. its commit failed): CANCELLED, never run."""
        if record.status is TaskStatus.PENDING:
            live = self._live.get(record.task_id)
            if live is not None and live.handle is not None:
                live.handle.cancel(reason=reason)
            self._tracker.finish(record, TaskStatus.CANCELLED, reason=reason)

    @property
    def is_running(self) -> bool:
        """True while `running()` holds the supervision tree open."""
        return self._root is not None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Any]:
        """Own the tasks for the duration of the block (the app's lifespan): drain, then cancel, on exit."""
        if self._root is not None:
            raise RuntimeError("this task manager is already running (one lifespan at a time)")
        root = Supervisor(
            Policy(
                name="taskflow", max_concurrency=self.max_concurrent_tasks, max_threads=self.max_sync_threads
            ),
            name="taskflow",
            observers=[self._tracker],
            shutdown_grace=self.shutdown_grace,
            checkpoint_timeout=self.checkpoint_timeout,
        )
        persistence = self._persistence
        maintenance = anyio.CancelScope()

        async def maintain(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            assert persistence is not None
            with maintenance:
                await persistence.maintain(self, task_status=task_status)

        if persistence is not None:
            # Opened before the task group (open is idempotent): a bad store path fails as one clear
            # error, not wrapped in an ExceptionGroup.
            await persistence.store.open()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self._dispatcher.run)
                if persistence is not None:
                    await persistence.start(tg)
                    self.table.remember_settled_keys(await persistence.settled_keys())
                try:
                    async with root:
                        self._root = root
                        if persistence is not None:
                            await tg.start(maintain)  # first recovery runs before the app serves
                        yield self
                finally:
                    self._root = None
                    self._supervisors.clear()
                    maintenance.cancel()
                    self._interrupt_undispatched()
                    if persistence is not None:
                        await persistence.close()
                    tg.cancel_scope.cancel()
        finally:
            if persistence is not None:
                await persistence.close_store()

    def _interrupt_undispatched(self) -> None:
        # Tasks accepted but never handed to a supervisor (their response was still being sent).
        for task_id, live in list(self._live.items()):
            record = self.table.get(task_id)
            if record is not None and live.handle is None and record.status is TaskStatus.PENDING:
                self.on_interrupted(record, "shutdown")

    def on_interrupted(self, record: TaskRecord, reason: str) -> None:
        """A task stopped by shutdown: kept for the next start when it may run again, else INTERRUPTED."""
        if record.status.is_terminal:
            return
        persistence = self._persistence
        live = self._live.pop(record.task_id, None)
        definition = live.definition if live is not None else None
        requeue = (
            persistence is not None
            and persistence.active
            and definition is not None
            and type(record.args) is not UnstoredCallArgs  # only display forms are stored: cannot re-run
            and (
                definition.config.requeue_on_interrupt
                if record.status is TaskStatus.RUNNING
                else (
                    self.requeue_pending
                    or definition.config.persist
                    or definition.config.requeue_on_interrupt
                )
            )
        )
        if not requeue:
            self._tracker.finish(record, TaskStatus.INTERRUPTED, reason=reason)
            return
        assert persistence is not None
        record.status_reason = f"requeued: interrupted by {reason}"
        if record.status is TaskStatus.RUNNING:
            record.logs.append(f"--- Requeued: interrupted by {reason} ---")
            self.table.set_status(record, TaskStatus.PENDING)
        persistence.save(record, requeue=True)
        self.changed(record)

    def adopt(self, orphan: RecoveredTask) -> None:
        """Take over a task of a lost instance (claimed atomically): re-run it or mark it INTERRUPTED."""
        record = orphan.record
        definition = self.registry.find(record.func_name)
        status, reason = recovery_decision(orphan, can_run=definition is not None)
        record.status_reason = reason
        if status is TaskStatus.PENDING and definition is not None:
            record.status = TaskStatus.PENDING
            record.logs.append(f"--- {reason} ---")
            self._accept(record, definition, contextvars.copy_context())
            if self._root is not None:
                self._start(record, self._live[record.task_id])
            return
        record.status = TaskStatus.INTERRUPTED
        record.end_time = utcnow()
        self.table.add(record)
        self._metrics.record_finished(record)
        if self._persistence is not None:
            self._persistence.save(record, requeue=False)
        self.changed(record)

    def report_store_problem(self, message: str, *, level: str) -> None:
        """Make a store failure (or its recovery) visible: the `taskflow.store` logger and every observer.

        Observers receive it as a `LogEvent` of the pseudo-task `taskflow.store` (empty task id).
        """
        _store_log.log(logging.ERROR if level == "error" else logging.INFO, "%s", message)
        if self._dispatcher.active:
            self._dispatcher.emit_log(LogEvent("", STORE_EVENT_NAME, message, level, utcnow(), 0))
