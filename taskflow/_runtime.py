"""The task runtime: the framework-free core of `TaskManager`, a composition root over its collaborators.

The constructor builds each piece once and wires them together; nothing calls back up into the runtime:

- `TaskTable` (`table`): the live records; `Lifecycle` (`lifecycle`): the only writer of their statuses,
  which hands every change to one list of sinks (store, settlement and metrics, observers, listeners);
- `Launcher` (`launcher`): admits new tasks and starts them after the response (supervised or inline);
- `Tracker`: turns the supervisors' reports into lifecycle changes;
- `Lifespan` (`lifespan`) and `Settlement`: `running()`, shutdown, adoption of a lost instance's tasks;
- `TaskActions` (`actions`): lookups, cancel, resubmit, metrics, history deletion.

The public methods are fastapi-taskflow 0.5.0's and the documented additions. `lifecycle`, `launcher`,
`lifespan`, `actions` and `listeners` are the package-internal contract `taskflow.web` (and the tests) use:
not part of the public API.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import anyio

from supervisors import Clock, Policy, Restart

from ._actions import TaskActions
from ._actor import Actor, ActorServices
from ._attempt_context import bound_log_values
from ._compat import warn_ignored_settings
from ._compat_store import CompatTaskStore
from ._config import UNSET, ConfigSource, TaskflowConfig, load_config, named_task_policy
from ._counters import TaskCounters
from ._encryption import ArgsCipher
from ._exceptions import ConfigurationError
from ._launcher import Launcher
from ._lifecycle import Lifecycle, Sink
from ._lifespan import Lifespan, Settlement
from ._metrics import MetricsRecorder, TaskManagerStatistics
from ._models import TaskConfig, TaskRecord, utcnow
from ._persistence import Persistence
from ._process_pool import ProcessPool, ProcessPoolStatistics
from ._queues import (
    DEFAULT_QUEUE,
    QueueConfig,
    Queues,
    QueueSink,
    UnknownQueue,
    check_limit,
    check_priority,
)
from ._registry import RetryOn, TaskRegistry, callable_name
from ._schedule_api import ScheduleApi
from ._schedule_runs import RunStarter
from ._scheduler import Scheduler
from ._schedules import ScheduleClock, SystemScheduleClock
from ._services import ActorStatistics, GiveUpHandler, Services, define_actor
from ._sinks import Durability, ListenerSink, ObserverSink, SettleSink, StoreSink
from ._table import TaskTable
from ._tracker import Tracker
from .observers import (
    FileLogger,
    LogEvent,
    LoggerChain,
    ObserverDispatcher,
    ObserverStatistics,
    TaskObserver,
)
from .stores import Page, TaskStore, WriterStatistics

DEFAULT_MAX_PENDING = 100_000
"""The default `max_pending`: most tasks one process holds unfinished before `add_task` refuses more."""
_KEEP: Any = object()  # `update_queue_config`'s "leave this limit as it is"

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A", bound=Callable[[], Awaitable[Any]])


def _check_cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{name} must be a positive int or None, got {value!r}")


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


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
        _check_cap("max_concurrent_tasks", max_concurrent_tasks)
        _check_cap("max_pending", max_pending)
        check_limit("max_size", max_size)
        _check_cap("max_sync_threads", max_sync_threads)
        _check_cap("max_process_workers", max_process_workers)
        _check_cap("process_max_tasks_per_worker", process_max_tasks_per_worker)
        _check_seconds("shutdown_grace", shutdown_grace)
        _check_seconds("checkpoint_timeout", checkpoint_timeout)
        _check_seconds("snapshot_interval", snapshot_interval)
        _check_seconds("merged_list_ttl", merged_list_ttl)
        warn_ignored_settings(snapshot_interval=snapshot_interval, merged_list_ttl=merged_list_ttl)
        _check_seconds("heartbeat_interval", heartbeat_interval)
        _check_seconds("heartbeat_ttl", heartbeat_ttl)
        _check_seconds("durable_timeout", durable_timeout)
        if retention_days is not None:
            _check_seconds("retention_days", retention_days)
        if heartbeat_ttl <= heartbeat_interval:
            raise ConfigurationError("heartbeat_ttl must be longer than heartbeat_interval")
        if max_terminal_records is not None and (
            isinstance(max_terminal_records, bool)
            or not isinstance(max_terminal_records, int)
            or max_terminal_records < 0
        ):
            raise ConfigurationError(
                f"max_terminal_records must be an int >= 0 or None, got {max_terminal_records!r}"
            )
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
        declared = _declared_queues(self.config, queues, max_size)
        self._queues: Queues | None = Queues(declared) if declared else None
        self.clock = clock
        self.schedule_clock: ScheduleClock = (
            schedule_clock if schedule_clock is not None else SystemScheduleClock()
        )
        self._heartbeat_interval = heartbeat_interval
        self.services = Services(clock)  # the app's long-lived actors (`@actor`)
        self.registry = TaskRegistry()
        self.table = TaskTable(max_terminal_records=max_terminal_records)
        self._cipher = ArgsCipher(encrypt_args_key) if encrypt_args_key is not None else None
        # `executor="process"` tasks: no worker process starts before the first such attempt.
        self.max_process_workers = max_process_workers or os.cpu_count() or 1
        self._processes = ProcessPool(self.max_process_workers, process_max_tasks_per_worker)

        observers = list(loggers or [])
        if log_file is not None:
            observers.append(
                FileLogger(
                    log_file,
                    max_bytes=log_file_max_bytes,
                    backup_count=log_file_backup_count,
                    mode=log_file_mode,  # type: ignore[arg-type]  # validated by FileLogger
                    log_lifecycle=log_lifecycle,
                )
            )
        self.logger: LoggerChain | None = LoggerChain(observers) if observers else None
        self.retention_days = retention_days
        store = snapshot_backend
        if store is None and snapshot_db is not None:
            from .backends import SqliteBackend

            store = SqliteBackend(snapshot_db)
        persistence = (
            Persistence(
                store,
                heartbeat_interval=heartbeat_interval,
                heartbeat_ttl=heartbeat_ttl,
                retention_days=retention_days,
                durable_timeout=durable_timeout,
            )
            if store is not None
            else None
        )
        self._build(self._cipher, persistence, ObserverDispatcher(observers))

    def _build(
        self, cipher: ArgsCipher | None, persistence: Persistence | None, dispatcher: ObserverDispatcher
    ) -> None:
        """Make the collaborators, and the one list of sinks every task change goes to."""
        self._dispatcher = dispatcher
        # Observers that log through structlog get what the request and the task bound there.
        self._log_context = any(o.wants_log_context for o in dispatcher.observers)
        actors: dict[str, Actor] = {}  # tasks not settled yet
        metrics = MetricsRecorder()
        durability = Durability(self.registry, actors, self.requeue_pending)
        self.listeners = ListenerSink()
        self.counters = TaskCounters()  # totals per function, for `taskflow.metrics`
        self._persistence = persistence
        sinks: list[Sink] = []
        if persistence is not None:
            sinks.append(StoreSink(persistence, durability, actors))
        if self._queues is not None:
            sinks.append(QueueSink(self._queues))  # frees a queue slot the moment its task settles
        if dispatcher.active:
            sinks.append(ObserverSink(dispatcher, actors))  # before SettleSink: it reads the actor
        sinks.append(SettleSink(actors, metrics))
        sinks.append(self.counters)
        sinks.append(self.listeners)
        self.lifecycle = lifecycle = Lifecycle(self.table, sinks)
        settlement = Settlement(
            table=self.table,
            lifecycle=lifecycle,
            actors=actors,
            durability=durability,
            persistence=persistence,
        )
        tracker = Tracker(self.table, lifecycle, settlement.interrupted)
        self.launcher = Launcher(
            registry=self.registry, table=self.table, lifecycle=lifecycle, actors=actors,
            services=ActorServices(
                self._on_log, cipher, persistence,
                keep_log_context=self._log_context, on_update=lifecycle.update,
                durable=durability.is_durable, processes=self._processes,
            ),
            durability=durability,
            tracker=tracker, dispatcher=dispatcher, cipher=cipher, persistence=persistence,
            clock=self.clock, queues=self._queues, max_pending=self.max_pending,
        )  # fmt: skip
        self.lifespan = Lifespan(
            registry=self.registry, table=self.table, lifecycle=lifecycle, launcher=self.launcher,
            settlement=settlement, tracker=tracker, dispatcher=dispatcher, persistence=persistence,
            max_concurrent_tasks=self.max_concurrent_tasks, max_sync_threads=self.max_sync_threads,
            shutdown_grace=self.shutdown_grace, checkpoint_timeout=self.checkpoint_timeout,
            services=self.services, clock=self.clock,
        )  # fmt: skip
        self.actions = TaskActions(
            registry=self.registry, table=self.table, lifecycle=lifecycle, launcher=self.launcher,
            metrics=metrics, persistence=persistence,
        )  # fmt: skip
        self.store = CompatTaskStore(self.table, lifecycle)  # fastapi-taskflow 0.5.0's `TaskStore`
        starter = RunStarter(
            registry=self.registry, launcher=self.launcher, lifecycle=lifecycle, persistence=persistence
        )
        self.scheduler = Scheduler(
            starter=starter, table=self.table, persistence=persistence, clock=self.schedule_clock,
            maintenance_interval=self._heartbeat_interval,
        )  # fmt: skip

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
        if queue is not None:
            if self._queues is None:
                raise ConfigurationError(f"@task(queue={queue!r}): no queue is declared")
            self._queues.check_name(queue)
        check_priority(priority)
        placing: dict[str, Any] = {"queue": queue, "priority": priority}
        inline = {
            "retries": retries, "delay": delay, "backoff": backoff, "max_delay": max_delay,
            "jitter": jitter, "timeout": timeout, "retry_on": retry_on,
        }  # fmt: skip

        def decorator(func: F) -> F:
            task_name = name if name is not None else callable_name(func)
            if isinstance(policy, str):
                effective, group = named_task_policy(self.config, policy, inline, task_name)
                self.registry.register(
                    func, persist=persist, name=name, requeue_on_interrupt=requeue_on_interrupt,
                    policy=effective, group=group, executor=executor, **placing,
                )  # fmt: skip
                return func
            given: dict[str, Any] = {key: value for key, value in inline.items() if value is not UNSET}
            self.registry.register(
                func, persist=persist, name=name, requeue_on_interrupt=requeue_on_interrupt, policy=policy,
                executor=executor, **given, **placing,
            )  # fmt: skip
            return func

        return decorator

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

        def decorator(func: A) -> A:
            actor_name = name if name is not None else callable_name(func)
            named = self.config.policy(policy) if isinstance(policy, str) else None
            self.services.declare(
                define_actor(
                    func, name=actor_name, restart=restart, policy=None if named else policy,  # type: ignore[arg-type]
                    named=named, max_restarts=max_restarts, restart_window=restart_window,
                    on_give_up=on_give_up,
                )
            )  # fmt: skip
            return func

        return decorator

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
        return self._queues.stats() if self._queues is not None else []

    def update_queue_config(
        self, name: str, *, concurrency: int | None = _KEEP, max_size: int | None = _KEEP
    ) -> dict[str, Any]:
        """Change a queue's limits now, only the ones given (None: no limit); its stats after the change.

        A higher concurrency starts waiting tasks at once; a lower one lets the running ones finish. The
        change lives in this process until it stops (the declared values come back at the next start).
        KeyError (`UnknownQueue`) for an unknown queue, ConfigurationError for a bad value.
        """
        changes = {k: v for k, v in (("concurrency", concurrency), ("max_size", max_size)) if v is not _KEEP}
        if self._queues is None:
            raise UnknownQueue(f"no queue named {name!r} (no queue is declared)")
        return self._queues.update(name, changes)

    # -- log lines (from the tasks' scope) -------------------------------------------------------------

    def _on_log(
        self, record: TaskRecord, attempt: int, message: str, level: str, extra: dict[str, Any]
    ) -> None:
        if self._dispatcher.active:
            bound = bound_log_values() if self._log_context else None
            self._dispatcher.emit_log(
                LogEvent(
                    record.task_id,
                    record.func_name,
                    message,
                    level,
                    utcnow(),
                    attempt,
                    dict(record.tags),
                    extra,
                    bound or {},
                )
            )
        self.lifecycle.update(record)


def _declared_queues(
    config: TaskflowConfig, queues: Mapping[str, QueueConfig] | None, max_size: int | None
) -> dict[str, QueueConfig]:
    """The queues of configuration and of `queues=`, with `max_size=` as the default queue's limit."""
    if queues is not None and not isinstance(queues, Mapping):
        raise ConfigurationError(f"queues must be a dict of names to QueueConfig, got {queues!r}")
    declared = dict(config.queues)
    for name, queue in (queues or {}).items():
        if name in declared:
            raise ConfigurationError(f"queue {name!r} is declared both in {config.source} and in queues=")
        if isinstance(queue, Mapping):  # {"concurrency": 4}: the same keys as QueueConfig
            unknown = set(queue) - {"concurrency", "max_size"}
            if unknown:
                raise ConfigurationError(
                    f"queue {name!r}: unknown keys {sorted(unknown)} (concurrency, max_size)"
                )
            queue = QueueConfig(**queue)
        declared[name] = queue
    if max_size is not None:
        if DEFAULT_QUEUE in declared:
            raise ConfigurationError(
                "max_size= sets the 'default' queue's max_size, which is declared too: set it there"
            )
        declared[DEFAULT_QUEUE] = QueueConfig(max_size=max_size)
    return declared
