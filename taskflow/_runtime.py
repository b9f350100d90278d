"""The task runtime: the framework-free core of `TaskManager`.

It owns the registry, the live task table, the supervision tree and the observer fan-out, and drives each
task through its life: `submit` (in the request) creates the PENDING record; `dispatch` (after the response)
hands it to its policy's supervisor, or runs it inline when no lifespan is running; the `Tracker` applies
the supervisor's events to the record. The lifespan (`running()`, settlements at shutdown, adoption of a lost
instance's tasks) lives in `_lifespan.py`, and the actions (lookups, cancel, retry, metrics) in `_actions.py`.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio

from supervisors import Policy, Supervisor, SupervisorClosed, run_supervised

from ._actions import TaskActions
from ._actor import Actor, ActorServices, make_actor
from ._compat import warn_ignored_settings
from ._compat_store import CompatTaskStore
from ._encryption import ArgsCipher
from ._exceptions import ConfigurationError
from ._lifespan import TaskLifespan
from ._metrics import MetricsRecorder, TaskManagerStatistics
from ._models import TaskConfig, TaskRecord, TaskStatus, new_task_id, utcnow
from ._persistence import Persistence, request_records
from ._registry import RetryOn, TaskDefinition, TaskRegistry
from ._table import TaskTable
from ._tracker import Tracker
from ._unstored import call_to_store
from .observers import FileLogger, LifecycleEvent, LogEvent, LoggerChain, ObserverDispatcher, TaskObserver
from .stores import TaskStore

_log = logging.getLogger("taskflow")
F = TypeVar("F", bound=Callable[..., Any])
Listener = Callable[[TaskRecord], None]


def _check_cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{name} must be a positive int or None, got {value!r}")


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


class TaskRuntime(TaskLifespan, TaskActions):
    """Tasks as supervised actors. `TaskManager` (in taskflow.web) adds the FastAPI members."""

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
        shutdown_grace: float = 10.0,
        checkpoint_timeout: float = 5.0,
        max_terminal_records: int | None = 10_000,
        retention_days: float | None = None,
        heartbeat_interval: float = 5.0,
        heartbeat_ttl: float = 15.0,
        durable_timeout: float = 30.0,
    ) -> None:
        _check_cap("max_concurrent_tasks", max_concurrent_tasks)
        _check_cap("max_sync_threads", max_sync_threads)
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

        self.registry = TaskRegistry()
        self.table = TaskTable(max_terminal_records=max_terminal_records)
        self.store = CompatTaskStore(self)  # fastapi-taskflow 0.5.0's `TaskStore` over the table
        self._cipher = ArgsCipher(encrypt_args_key) if encrypt_args_key is not None else None

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
        self._dispatcher = ObserverDispatcher(observers)
        self._metrics = MetricsRecorder()
        self._tracker = Tracker(self)
        self._live: dict[str, Actor] = {}  # tasks not settled yet
        self._listeners: list[Listener] = []
        self._root: Supervisor | None = None
        self._supervisors: dict[str, Supervisor] = {}
        self.retention_days = retention_days
        store = snapshot_backend
        if store is None and snapshot_db is not None:
            from .backends import SqliteBackend

            store = SqliteBackend(snapshot_db)
        self._persistence = (
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
        self._actor_services = ActorServices(self._on_log, self._cipher, self._persistence)

    # -- declaring tasks -------------------------------------------------------------------------------

    def task(
        self,
        *,
        retries: int = 0,
        delay: float = 0.0,
        backoff: float = 1.0,
        persist: bool = False,
        name: str | None = None,
        requeue_on_interrupt: bool = False,
        max_delay: float | None = None,
        jitter: float = 0.0,
        timeout: float | None = None,
        retry_on: RetryOn = Exception,
        policy: Policy | None = None,
    ) -> Callable[[F], F]:
        """Declare a task function; it is returned unchanged and stays directly callable.

        `retries`, `delay`, `backoff`, `persist`, `name` and `requeue_on_interrupt` are fastapi-taskflow's;
        `max_delay`, `jitter`, `timeout` (per attempt) and `retry_on` are new, as is passing a shared
        `supervisors.Policy` (tasks with the same policy share one supervisor and its limits).
        """

        def decorator(func: F) -> F:
            self.registry.register(
                func, retries=retries, delay=delay, backoff=backoff, persist=persist, name=name,
                requeue_on_interrupt=requeue_on_interrupt, max_delay=max_delay, jitter=jitter,
                timeout=timeout, retry_on=retry_on, policy=policy,
            )  # fmt: skip
            return func

        return decorator

    # -- the life of a task ----------------------------------------------------------------------------

    def submit(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> tuple[str, bool]:
        """Create the PENDING record of a call; return (task id, whether it must be dispatched).

        When a non-failed task already holds `idempotency_key`, its id is returned and nothing is created.
        """
        if not callable(func):
            raise TypeError(f"add_task() needs a callable, got {func!r}")
        if idempotency_key is not None and not isinstance(idempotency_key, str):
            raise TypeError(f"idempotency_key must be a str, got {type(idempotency_key).__name__}")
        if tags is not None and (
            not isinstance(tags, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise TypeError("tags must be a dict of str to str")
        definition = self.registry.definition_for(func)
        if idempotency_key is not None:
            holder = self.table.key_holder(idempotency_key)
            if holder is not None:
                return holder, False
        payload = None
        if self._cipher is not None or self._persistence is not None:
            persist = definition.config.persist
            args, kwargs, payload = call_to_store(args, kwargs, persist=persist, cipher=self._cipher)
        record = TaskRecord(
            task_id=new_task_id(),
            func_name=definition.name,
            status=TaskStatus.PENDING,
            args=args,
            kwargs=kwargs,
            created_at=utcnow(),
            idempotency_key=idempotency_key,
            tags=dict(tags) if tags else {},
            encrypted_payload=payload,
        )
        if idempotency_key is None:
            self._accept(record, definition, contextvars.copy_context())
            return record.task_id, True
        self._live[record.task_id] = make_actor(
            record, definition, contextvars.copy_context(), self._actor_services
        )
        holder = self.table.add_unless_key_held(record)
        if holder is not None:  # another thread took the key in between
            del self._live[record.task_id]
            return holder, False
        self._accepted(record, definition)
        return record.task_id, True

    def _accept(self, record: TaskRecord, definition: TaskDefinition, context: contextvars.Context) -> None:
        """Add a new PENDING record to the table, ready for `dispatch`."""
        self._live[record.task_id] = make_actor(record, definition, context, self._actor_services)
        self.table.add(record)
        self._accepted(record, definition)

    def _accepted(self, record: TaskRecord, definition: TaskDefinition) -> None:
        persistence = self._persistence
        if persistence is not None:
            durable = self.requeue_pending or definition.config.persist
            persistence.save(record, requeue=durable)
            in_request = request_records.get()
            if in_request is not None and durable:
                in_request.append(record)  # the web middleware commits these before the response starts
        if self._listeners:
            self._notify(record)

    def _requeue_flag(self, record: TaskRecord) -> bool:
        """Whether the store should re-run this record if its instance is lost in its current state."""
        live = self._live.get(record.task_id)
        definition = live.definition if live is not None else self.registry.find(record.func_name)
        if definition is None:
            return False
        if record.status is TaskStatus.PENDING:
            return self.requeue_pending or definition.config.persist
        if record.status is TaskStatus.RUNNING:
            return definition.config.requeue_on_interrupt
        return False

    async def make_durable(self, records: list[TaskRecord]) -> bool:
        """Commit these records before a response goes out; False if the store could not confirm in time."""
        persistence = self._persistence
        if persistence is None or not persistence.active:
            return True
        return await persistence.make_durable(records, self._requeue_flag)

    async def dispatch_all(self, task_ids: list[str]) -> None:
        """`dispatch` each task, in order (what a request's background item does after the response)."""
        persistence = self._persistence
        claims_keys = persistence is not None and persistence.active
        for task_id in task_ids:
            live = self._live.get(task_id)
            if live is None or live.context is None:
                continue  # settled (e.g. cancelled) before it started, or already dispatched
            record = live.record
            if self._root is not None and not (claims_keys and record.idempotency_key is not None):
                if record.status is TaskStatus.PENDING:
                    self._start(record, live)  # the common case: nothing to wait for
            else:
                await self.dispatch(task_id)

    async def dispatch(self, task_id: str) -> None:
        """Start a PENDING task: as a supervised actor when the lifespan runs, else inline, here and now."""
        live = self._live.get(task_id)
        record = self.table.get(task_id)
        if (
            live is None
            or record is None
            or record.status is not TaskStatus.PENDING
            or live.context is None  # its context went with it when it was started
        ):
            return  # cancelled before it started, unknown, or already dispatched
        persistence = self._persistence
        if record.idempotency_key is not None and persistence is not None and persistence.active:
            holder = await self._claim_key(persistence, record)
            if holder is not None:
                self._tracker.finish(record, TaskStatus.CANCELLED, reason=f"duplicate of task {holder}")
                return
            if record.status is not TaskStatus.PENDING:
                return  # cancelled while the key was being claimed
        if self._root is None:
            await self._run_inline(record, live)
        else:
            self._start(record, live)

    async def _claim_key(self, persistence: Persistence, record: TaskRecord) -> str | None:
        # Another instance sharing the store may hold the key: the store decides, atomically.
        assert record.idempotency_key is not None
        try:
            holder = await persistence.store.claim_idempotency_key(record.idempotency_key, record.task_id)
        except Exception:
            _log.exception(
                "could not claim idempotency key %r in the store; running anyway", record.idempotency_key
            )
            return None
        return holder if holder != record.task_id else None

    def _start(self, record: TaskRecord, live: Actor) -> None:
        """Hand a PENDING record to its policy's supervisor (the lifespan is running)."""
        root = self._root
        assert root is not None
        definition = live.definition
        supervisor = self._supervisors.get(definition.policy.name)
        if supervisor is None:
            supervisor = self._supervisors[definition.policy.name] = root.child(definition.policy)
        try:
            live.handle = supervisor.start_soon(
                live,
                name=definition.name,
                key=record.task_id,
                context=live.take_context(),
            )
        except SupervisorClosed:
            self.on_interrupted(record, "shutdown")

    async def _run_inline(self, record: TaskRecord, live: Actor) -> None:
        definition = live.definition

        async def run() -> None:
            await run_supervised(
                live,
                policy=definition.policy,
                name=definition.name,
                key=record.task_id,
                observers=[self._tracker],
            )

        # A task group of one, so the child runs in (a copy of) the context captured by add_task.
        async with anyio.create_task_group() as tg:
            live.take_context().run(tg.start_soon, run)
        await self._dispatcher.drain()

    # -- state changes (called by the tracker and the actions) -----------------------------------------

    def transition(self, record: TaskRecord, status: TaskStatus) -> None:
        """Move a record to a new state and fan the change out (store, metrics, observers, listeners)."""
        self.table.set_status(record, status)
        if self._persistence is not None:
            batch = self._persistence.save(record, requeue=self._requeue_flag(record))
            if status is TaskStatus.RUNNING and batch is not None and self._persistence.active:
                live = self._live.get(record.task_id)
                if live is not None and (self.requeue_pending or live.definition.config.persist):
                    live.running_batch = batch
        if status.is_terminal:
            self._live.pop(record.task_id, None)
            self._metrics.record_finished(record)
        if self._dispatcher.active:
            self._dispatcher.emit_lifecycle(
                LifecycleEvent(
                    task_id=record.task_id,
                    func_name=record.func_name,
                    status=status,
                    timestamp=utcnow(),
                    attempt=record.retries_used if status.is_terminal else 0,
                    retries_used=record.retries_used,
                    duration=record.duration,
                    error=record.error,
                    stacktrace=record.stacktrace,
                    tags=dict(record.tags),
                )
            )
        if self._listeners:
            self._notify(record)

    def changed(self, record: TaskRecord) -> None:
        """Tell listeners a record changed without a state change (a retry scheduled, a log line)."""
        if self._persistence is not None:
            self._persistence.save(record, requeue=self._requeue_flag(record))
        if self._listeners:
            self._notify(record)

    def _on_log(
        self, record: TaskRecord, attempt: int, message: str, level: str, extra: dict[str, Any]
    ) -> None:
        if self._dispatcher.active:
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
                )
            )
        self.changed(record)

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(record)` after every change (may be called from worker threads for log lines)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling `listener`."""
        self._listeners.remove(listener)

    def _notify(self, record: TaskRecord) -> None:
        for listener in list(self._listeners):
            try:
                listener(record)
            except Exception:  # a broken listener must not break a task
                _log.exception("task listener %r failed", listener)

    def statistics(self) -> TaskManagerStatistics:
        """A frozen snapshot of counts, durations, throughput and the supervision tree."""
        counts = self.table.counts()
        root = self._root
        return self._metrics.snapshot(
            counts[TaskStatus.PENDING],
            counts[TaskStatus.RUNNING],
            root.statistics() if root is not None else None,
        )

    async def merged_list(self) -> list[TaskRecord]:
        """Every record this process holds (fastapi-taskflow's name)."""
        return self.table.records()

    def get_config(self, func: Callable[..., Any]) -> TaskConfig | None:
        """The declared options of a task function, None if it was never decorated."""
        return self.registry.get_config(func)

    async def flush_observers(self) -> None:
        """Deliver every queued observer event now (handy in tests)."""
        await self._dispatcher.drain()
