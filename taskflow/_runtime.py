"""The task runtime: the framework-free core of `TaskManager`, its public face over its collaborators.

`TaskRuntime` checks its options (`_runtime_options.py`), has its collaborators built once
(`_composition.py`) and holds them; every public method is a thin delegation to the one that owns it:

- `TaskTable` (`table`): the live records; `Lifecycle` (`lifecycle`): the only writer of their statuses,
  which hands every change to one list of sinks (store, settlement and metrics, observers, listeners);
- `Launcher` (`launcher`): starts tasks after the response (supervised or inline), over `Admission`
  (admitting them, queues, admission control) and `StoreGate` (what the store must confirm first);
- `Lifespan` (`lifespan`) and `Settlement`: `running()`, shutdown, adoption of a lost instance's tasks;
- `TaskActions` (`actions`): lookups, history, cancel, retry, metrics, history deletion;
- `Declarations` (`@task`, `@actor`), `QueueAdmin` (the queue methods), and the collaborators owning the
  statistics (the dispatcher's, the store writer's, the process pool's, the actors').

The public methods are fastapi-taskflow 0.5.0's and the documented additions. `lifecycle`, `launcher`,
`lifespan`, `actions` and `listeners` are the package-internal contract `taskflow.web` (and the tests) use:
not part of the public API.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import anyio

from supervisors import Clock, Policy, Restart

from ._composition import compose, file_observers, open_persistence
from ._config import UNSET, ConfigSource, TaskflowConfig, load_config
from ._declarations import Declarations
from ._encryption import ArgsCipher
from ._metrics import TaskManagerStatistics
from ._models import TaskConfig, TaskRecord
from ._process_pool import ProcessPool, ProcessPoolStatistics
from ._queue_admin import KEEP, QueueAdmin
from ._queues import QueueConfig, Queues
from ._registry import RetryOn, TaskRegistry
from ._runtime_options import DEFAULT_MAX_PENDING, check_options, declared_queues
from ._schedule_api import ScheduleApi
from ._schedules import ScheduleClock, SystemScheduleClock
from ._services import ActorStatistics, GiveUpHandler, Services
from ._table import TaskTable
from .observers import LoggerChain, ObserverDispatcher, ObserverStatistics, TaskObserver
from .stores import Page, TaskStore, WriterStatistics

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A", bound=Callable[[], Awaitable[Any]])


class TaskRuntime(ScheduleApi):
    """Tasks as supervised actors. `TaskManager` (in taskflow.web) adds the FastAPI members; the schedule
    methods come from `ScheduleApi`."""

    def __init__(
        self,
        *,
        snapshot_db: str | None = None,
        snapshot_backend: TaskStore | None = None,
        snapshot_interval: float = 60.0,
        requeue_pending: bool = False,
        merged_list_ttl: float = 5.0,
        loggers: Sequence[TaskObserver] | None = None,
        log_file: str | None = None,
        log_file_max_bytes: int = 10 * 1024 * 1024,
        log_file_backup_count: int = 5,
        log_file_mode: str = "rotate",
        log_lifecycle: bool = False,
        encrypt_args_key: str | bytes | Sequence[str | bytes] | None = None,
        max_concurrent_tasks: int | None = None,
        max_sync_threads: int | None = None,
        max_process_workers: int | None = None,
        process_max_tasks_per_worker: int | None = None,
        shutdown_grace: float = 10.0,
        checkpoint_timeout: float = 5.0,
        max_terminal_records: int | None = 10_000,
        retention_days: float | None = None,
        heartbeat_interval: float = 5.0,
        heartbeat_ttl: float = 15.0,
        durable_timeout: float = 30.0,
        config: ConfigSource = None,
        clock: Clock | None = None,
        schedule_clock: ScheduleClock | None = None,
        queues: Mapping[str, QueueConfig] | None = None,
        max_size: int | None = None,
        max_pending: int | None = DEFAULT_MAX_PENDING,
    ) -> None:
        check_options(
            max_concurrent_tasks=max_concurrent_tasks, max_pending=max_pending, max_size=max_size,
            max_sync_threads=max_sync_threads, max_process_workers=max_process_workers,
            process_max_tasks_per_worker=process_max_tasks_per_worker, shutdown_grace=shutdown_grace,
            checkpoint_timeout=checkpoint_timeout, snapshot_interval=snapshot_interval,
            merged_list_ttl=merged_list_ttl, heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl, durable_timeout=durable_timeout, retention_days=retention_days,
            max_terminal_records=max_terminal_records,
        )  # fmt: skip
        self.snapshot_db = snapshot_db
        self.snapshot_backend = snapshot_backend
        self.snapshot_interval = snapshot_interval
        self.requeue_pending = requeue_pending
        self.merged_list_ttl = merged_list_ttl
        self.max_concurrent_tasks = max_concurrent_tasks
        self.max_sync_threads = max_sync_threads
        self.shutdown_grace = float(shutdown_grace)
        self.checkpoint_timeout = float(checkpoint_timeout)

        self.config: TaskflowConfig = load_config(config)  # named policies; ConfigurationError if bad
        self.max_pending = max_pending
        declared = declared_queues(self.config, queues, max_size)
        task_queues = Queues(declared) if declared else None
        self.clock = clock
        self.schedule_clock: ScheduleClock = (
            schedule_clock if schedule_clock is not None else SystemScheduleClock()
        )
        self.services = Services(clock)  # the app's long-lived actors (`@actor`)
        self.registry = TaskRegistry()
        self.table = TaskTable(max_terminal_records=max_terminal_records)
        self._cipher = ArgsCipher(encrypt_args_key) if encrypt_args_key is not None else None
        # `executor="process"` tasks: no worker process starts before the first such attempt.
        self.max_process_workers = max_process_workers or os.cpu_count() or 1
        self._processes = ProcessPool(self.max_process_workers, process_max_tasks_per_worker)
        self._declarations = Declarations(
            config=self.config, registry=self.registry, services=self.services, queues=task_queues
        )
        self._queue_admin = QueueAdmin(task_queues)

        observers = file_observers(
            loggers, log_file, max_bytes=log_file_max_bytes, backup_count=log_file_backup_count,
            mode=log_file_mode, log_lifecycle=log_lifecycle,
        )  # fmt: skip
        self.logger: LoggerChain | None = LoggerChain(observers) if observers else None
        self.retention_days = retention_days
        self._persistence = open_persistence(
            snapshot_db, snapshot_backend, heartbeat_interval=heartbeat_interval, heartbeat_ttl=heartbeat_ttl,
            retention_days=retention_days, durable_timeout=durable_timeout,
        )  # fmt: skip
        self._dispatcher = ObserverDispatcher(observers)
        built = compose(
            registry=self.registry, table=self.table, services=self.services, queues=task_queues,
            processes=self._processes, cipher=self._cipher, persistence=self._persistence,
            dispatcher=self._dispatcher, requeue_pending=requeue_pending, max_pending=max_pending,
            max_concurrent_tasks=max_concurrent_tasks, max_sync_threads=max_sync_threads,
            shutdown_grace=self.shutdown_grace, checkpoint_timeout=self.checkpoint_timeout, clock=clock,
            schedule_clock=self.schedule_clock, maintenance_interval=heartbeat_interval,
        )  # fmt: skip
        self.listeners = built.listeners
        self.counters = built.counters
        self.lifecycle = built.lifecycle
        self.launcher = built.launcher
        self.lifespan = built.lifespan
        self.actions = built.actions
        self.store = built.store  # fastapi-taskflow 0.5.0's `TaskStore`
        self.scheduler = built.scheduler

    # -- declaring tasks -------------------------------------------------------------------------------

    def task(
        self,
        *,
        retries: int = UNSET,
        delay: float = UNSET,
        backoff: float = UNSET,
        persist: bool = False,
        name: str | None = None,
        requeue_on_interrupt: bool = False,
        max_delay: float | None = UNSET,
        jitter: float = UNSET,
        timeout: float | None = UNSET,
        retry_on: RetryOn = UNSET,
        policy: Policy | str | None = None,
        executor: str | None = None,
        queue: str | None = None,
        priority: int = 0,
    ) -> Callable[[F], F]:
        """Declare a task function; it is returned unchanged and stays directly callable.

        `retries`, `delay`, `backoff`, `persist`, `name` and `requeue_on_interrupt` are fastapi-taskflow's;
        `max_delay`, `jitter`, `timeout` (per attempt) and `retry_on` are new, as is passing a shared
        `supervisors.Policy` (tasks with the same policy share one supervisor and its limits) or the name of
        a policy declared in configuration, whose values the keywords given here override. Unset keywords
        default to 0 retries, no delay, backoff 1, no max_delay, no jitter, no timeout, `Exception`.
        `executor="process"` runs a module-level `def` task in a worker process (docs/processes.md);
        "async" and "thread" name what the function's kind chooses anyway.
        `queue` names a declared queue its tasks wait in, `priority` their order there (higher first);
        `add_task(..., queue=, priority=)` overrides both per call (docs/queues.md).
        """
        inline = {
            "retries": retries, "delay": delay, "backoff": backoff, "max_delay": max_delay,
            "jitter": jitter, "timeout": timeout, "retry_on": retry_on,
        }  # fmt: skip
        return self._declarations.task(
            inline, persist=persist, name=name, requeue_on_interrupt=requeue_on_interrupt, policy=policy,
            executor=executor, queue=queue, priority=priority,
        )  # fmt: skip

    def actor(
        self,
        *,
        restart: Restart | str = "permanent",
        policy: Policy | str | None = None,
        name: str | None = None,
        max_restarts: int | None = None,
        restart_window: float | None = None,
        on_give_up: GiveUpHandler | None = None,
    ) -> Callable[[A], A]:
        """Declare a long-lived service (an `async def` taking no arguments), run while the lifespan runs.

        `restart="permanent"` restarts it whenever it ends, `"transient"` only when it fails, after the
        policy's backoff. Past `max_restarts` restarts within `restart_window` seconds (the named policy's,
        else 3 in 60 s) it gives up: logged, visible in `actor_statistics()`, and `on_give_up(stats)` is
        called, if given (what it raises stops the runtime). The function is returned unchanged.
        """
        return self._declarations.actor(
            restart=restart, policy=policy, name=name, max_restarts=max_restarts,
            restart_window=restart_window, on_give_up=on_give_up,
        )  # fmt: skip

    def actor_statistics(self) -> list[ActorStatistics]:
        """A snapshot of each declared actor: state, restarts, last error (see `@actor`)."""
        return self.services.statistics()

    # -- the lifespan ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Any]:
        """Own the tasks for the duration of the block (the app's lifespan): drain, then cancel, on exit."""
        try:
            async with self.lifespan.running():
                yield self
        finally:
            with anyio.CancelScope(shield=True):  # bounded: idle workers leave as their pipe closes
                await self._processes.close()

    def process_statistics(self) -> ProcessPoolStatistics:
        """A snapshot of the worker processes of `executor="process"` tasks (alive, idle, started, ...)."""
        return self._processes.statistics()

    @property
    def is_running(self) -> bool:
        """True while `running()` holds the supervision tree open."""
        return self.launcher.root is not None

    # -- reading tasks ---------------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord:
        """The in-memory record of `task_id`; TaskNotFound when unknown here."""
        return self.actions.get(task_id)

    def query(self, **filters: Any) -> Page:
        """In-memory records, filtered and cursor-paged, newest first (see TaskTable.query)."""
        return self.actions.query(**filters)

    def statistics(self) -> TaskManagerStatistics:
        """A frozen snapshot of counts, durations, throughput and the supervision tree."""
        return self.actions.statistics()

    async def merged_list(self) -> list[TaskRecord]:
        """Every record this process holds (fastapi-taskflow's name)."""
        return self.table.records()

    async def find(self, task_id: str) -> TaskRecord:
        """The record of `task_id`, from memory or else from the store; TaskNotFound when unknown."""
        return await self.actions.find(task_id)

    async def query_history(self, *, limit: int | None = None, **filters: Any) -> Page:
        """Every task (the store's history when there is one), filtered and cursor-paged, newest first."""
        return await self.actions.query_history(limit=limit, **filters)

    async def metrics(self) -> dict[str, Any]:
        """The figures of `GET /tasks/metrics`: the store's history when there is one, else this process."""
        return await self.actions.metrics()

    def get_config(self, func: Callable[..., Any]) -> TaskConfig | None:
        """The declared options of a task function, None if it was never decorated."""
        return self.registry.get_config(func)

    # -- acting on tasks (what the HTTP API's actions call) ----------------------------------------------

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a pending task (it never runs) or a running one; InvalidTaskState when it has finished."""
        return self.actions.cancel(task_id)

    async def retry(self, task_id: str) -> TaskRecord:
        """Run a failed or interrupted task again, as a new task linked to it (tag `retry_of`); its record is
        returned (the HTTP API's retry; not the policy's retries of one task). InvalidTaskState otherwise.
        While an earlier retry of the same task is pending, running or succeeded, that one is returned."""
        run = await self.actions.retry(task_id)
        if run.created:
            await self.launcher.start(run.task_id)
        # Concurrent retries of one task (on any instance sharing the store) get the same run.
        return run.record if run.record is not None else await self.actions.find_soon(run.task_id)

    async def delete_history(self, cutoff: datetime) -> dict[str, int]:
        """Forget finished tasks that ended before `cutoff`, in memory and in the store."""
        return await self.actions.delete_history(cutoff)

    def observer_statistics(self) -> ObserverStatistics:
        """The observer dispatcher's counters: queued, delivered, dropped events, observer errors."""
        return self._dispatcher.statistics()

    def store_statistics(self) -> WriterStatistics | None:
        """The store writer's counters (commits, failures, time writing); None without a running store."""
        return self._persistence.statistics() if self._persistence is not None else None

    async def flush_observers(self) -> None:
        """Deliver every queued observer event (and listener change) now (handy in tests)."""
        self.lifecycle.flush()
        await self._dispatcher.drain()

    # -- queues ----------------------------------------------------------------------------------------

    def queue_stats(self) -> list[dict[str, Any]]:
        """Per declared queue, by name (fastapi-taskflow 0.9's method): `name, concurrency, max_size,
        pending` (waiting), `running, finished, rejected`. Empty when no queue is declared."""
        return self._queue_admin.stats()

    def update_queue_config(
        self, name: str, *, concurrency: int | None = KEEP, max_size: int | None = KEEP
    ) -> dict[str, Any]:
        """Change a queue's limits now, only the ones given (None: no limit); its stats after the change.

        A higher concurrency starts waiting tasks at once; a lower one lets the running ones finish. The
        change lives in this process until it stops (the declared values come back at the next start).
        KeyError (`UnknownQueue`) for an unknown queue, ConfigurationError for a bad value.
        """
        return self._queue_admin.update(name, concurrency=concurrency, max_size=max_size)
