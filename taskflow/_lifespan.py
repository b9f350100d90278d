"""The runtime's lifespan: `running()`, shutdown settlements, and adopting tasks of lost instances.

`Lifespan.running()` opens the task group that the supervision tree, the observer dispatcher and the store's
writer live in; on exit it drains, cancels, and settles every task (`Settlement`: kept for the next start
when it may run again, else INTERRUPTED) before the store is closed.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from supervisors import Clock, Policy, Supervisor

from . import _tracing
from ._models import TaskRecord, TaskStatus, utcnow
from ._recovery import recovery_decision
from .observers import LogEvent
from .stores import RecoveredTask

_store_log = logging.getLogger("taskflow.store")
STORE_EVENT_NAME = "taskflow.store"
"""The `func_name` of the LogEvents that report the state of the task store to observers."""
ACTOR_EVENT_PREFIX = "taskflow.actor."
"""The `func_name` of the LogEvents reporting an actor's escalation starts with this, then its name."""

if TYPE_CHECKING:
    from ._actor import Actor
    from ._launcher import Launcher
    from ._lifecycle import Lifecycle
    from ._persistence import Persistence
    from ._registry import TaskRegistry
    from ._services import Services
    from ._sinks import Durability
    from ._table import TaskTable
    from ._tracker import Tracker
    from .observers import ObserverDispatcher


class Settlement:
    """What becomes of tasks stopped by shutdown: kept for the next start when they may run again, else
    INTERRUPTED."""

    def __init__(
        self,
        *,
        table: TaskTable,
        lifecycle: Lifecycle,
        actors: dict[str, Actor],
        durability: Durability,
        persistence: Persistence | None,
    ) -> None:
        self.table = table
        self.lifecycle = lifecycle
        self.actors = actors
        self.durability = durability
        self.persistence = persistence

    def interrupted(self, record: TaskRecord, reason: str) -> None:
        """A task stopped by shutdown: requeued for the next start when it may run again, else INTERRUPTED."""
        if record.status.is_terminal:
            return
        persistence = self.persistence
        actor = self.actors.pop(record.task_id, None)
        if (
            persistence is not None
            and persistence.active
            and actor is not None
            and self.durability.keep_at_shutdown(record, actor.definition)
        ):
            self.lifecycle.requeue(record, reason)
        else:
            self.lifecycle.finish(record, TaskStatus.INTERRUPTED, reason=reason)

    def interrupt_unstarted(self) -> None:
        """Settle the tasks accepted but never handed to a supervisor (their response was still going out)."""
        for task_id, actor in list(self.actors.items()):
            record = self.table.get(task_id)
            if record is not None and actor.handle is None and record.status is TaskStatus.PENDING:
                self.interrupted(record, "shutdown")


class Lifespan:
    """Owns the tasks for the duration of `running()` (the app's lifespan)."""

    def __init__(
        self,
        *,
        registry: TaskRegistry,
        table: TaskTable,
        lifecycle: Lifecycle,
        launcher: Launcher,
        settlement: Settlement,
        tracker: Tracker,
        dispatcher: ObserverDispatcher,
        persistence: Persistence | None,
        max_concurrent_tasks: int | None,
        max_sync_threads: int | None,
        shutdown_grace: float,
        checkpoint_timeout: float,
        services: Services,
        clock: Clock | None = None,
    ) -> None:
        self.registry = registry
        self.table = table
        self.lifecycle = lifecycle
        self.launcher = launcher
        self.settlement = settlement
        self.tracker = tracker
        self.dispatcher = dispatcher
        self.persistence = persistence
        self.max_concurrent_tasks = max_concurrent_tasks
        self.max_sync_threads = max_sync_threads
        self.shutdown_grace = shutdown_grace
        self.checkpoint_timeout = checkpoint_timeout
        self.services = services
        self.clock = clock

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own the tasks for the duration of the block: drain, then cancel, on exit."""
        launcher = self.launcher
        if launcher.root is not None:
            raise RuntimeError("this task manager is already running (one lifespan at a time)")
        root = Supervisor(
            Policy(
                name="taskflow", max_concurrency=self.max_concurrent_tasks, max_threads=self.max_sync_threads
            ),
            name="taskflow",
            observers=[self.tracker],
            shutdown_grace=self.shutdown_grace,
            checkpoint_timeout=self.checkpoint_timeout,
            clock=self.clock,
        )
        persistence = self.persistence
        queues = launcher.queues
        maintenance = anyio.CancelScope()

        async def maintain(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            assert persistence is not None
            with maintenance:
                await persistence.maintain(self, task_status=task_status)

        if persistence is not None:
            # Opened before the task group (open is idempotent): a bad store path fails as one clear
            # error, not wrapped in an ExceptionGroup.
            await persistence.store.open()
        self.lifecycle.bind_loop()  # listeners get each turn's changes together while the lifespan runs
        _tracing.recheck()  # a tracer provider the app set just before its lifespan is used at once
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.dispatcher.run)
                if persistence is not None:
                    await persistence.start(tg)
                    self.table.remember_settled_keys(await persistence.settled_keys())
                try:
                    async with root:
                        launcher.attach(root)
                        if queues is not None:
                            queues.bind_loop()
                        if persistence is not None:
                            await tg.start(maintain)  # first recovery runs before the app serves
                        await self.services.start(tg, self.report_actor)
                        try:
                            yield
                        finally:
                            if queues is not None:
                                queues.close()  # what waits in a queue is settled below, not started
                            await self.services.stop()  # the app's services stop before tasks drain
                finally:
                    launcher.detach()
                    maintenance.cancel()
                    self.settlement.interrupt_unstarted()  # tasks waiting in queues included
                    if queues is not None:
                        queues.unbind_loop()
                    if persistence is not None:
                        await persistence.close()
                    tg.cancel_scope.cancel()
        finally:
            self.lifecycle.unbind_loop()
            if persistence is not None:
                await persistence.close_store()

    def adopt(self, orphan: RecoveredTask) -> None:
        """Take over a task of a lost instance (claimed atomically): re-run it or mark it INTERRUPTED."""
        record = orphan.record
        definition = self.registry.find(record.func_name)
        status, reason = recovery_decision(orphan, can_run=definition is not None)
        record.status_reason = reason
        if status is TaskStatus.PENDING and definition is not None:
            record.logs.append(f"--- {reason} ---")
            self.launcher.accept(record, definition, contextvars.copy_context(), status=TaskStatus.PENDING)
            if self.launcher.root is not None:
                self.launcher.enqueue(record, self.launcher.actors[record.task_id])
            return
        record.end_time = utcnow()
        self.lifecycle.admit(record, status=TaskStatus.INTERRUPTED)

    def mirror_key(self, key: str, holder: str | None) -> None:
        """A key claimed (holder) or released (None) on any instance, from the store's key feed."""
        self.table.mirror_key(key, holder)

    def report_actor(self, name: str, message: str, level: str) -> None:
        """Make an actor's escalation visible to observers: a `LogEvent` of the pseudo-task
        `taskflow.actor.<name>` (empty task id); the `taskflow.actors` logger already has it."""
        if self.dispatcher.active:
            self.dispatcher.emit_log(LogEvent("", f"{ACTOR_EVENT_PREFIX}{name}", message, level, utcnow(), 0))

    def report_store_problem(self, message: str, *, level: str) -> None:
        """Make a store failure (or its recovery) visible: the `taskflow.store` logger and every observer.

        Observers receive it as a `LogEvent` of the pseudo-task `taskflow.store` (empty task id).
        """
        _store_log.log(logging.ERROR if level == "error" else logging.INFO, "%s", message)
        if self.dispatcher.active:
            self.dispatcher.emit_log(LogEvent("", STORE_EVENT_NAME, message, level, utcnow(), 0))
