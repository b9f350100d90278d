"""The task runtime: the framework-free core of `TaskManager`.

It owns the registry, the live task table, the supervision tree and the observer fan-out, and drives each
task through its life: `submit` (in the request) creates the PENDING record; `dispatch` (after the response)
hands it to its policy's supervisor, or runs it inline when no lifespan is running; the `Tracker` applies
the supervisor's events to the record. `running()` is the lifespan: it opens the task group that every task
and the observer dispatcher live in, and shuts it down gracefully.
"""

from __future__ import annotations

import contextvars
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from supervisors import ChildHandle, Policy, Supervisor, SupervisorClosed, current_attempt, run_supervised

from ._context import TaskScope, bind, unbind
from ._encryption import ArgsCipher
from ._exceptions import ConfigurationError, InvalidTaskState, PayloadError, TaskNotFound
from ._metrics import MetricsRecorder, TaskManagerStatistics
from ._models import TaskConfig, TaskRecord, TaskStatus, utcnow
from ._registry import RetryOn, TaskDefinition, TaskRegistry
from ._table import Page, TaskTable
from ._tracker import Tracker
from .observers import FileLogger, LifecycleEvent, LogEvent, LoggerChain, ObserverDispatcher, TaskObserver

_log = logging.getLogger("taskflow")
F = TypeVar("F", bound=Callable[..., Any])
Listener = Callable[[TaskRecord], None]


@dataclass(slots=True)
class _Live:
    """What the runtime keeps for a task until it ends: its definition, captured context and handle."""

    definition: TaskDefinition
    context: contextvars.Context
    handle: ChildHandle | None = None


def _check_cap(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{name} must be a positive int or None, got {value!r}")


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


class TaskRuntime:
    """Tasks as supervised actors. `TaskManager` (in taskflow.web) adds the FastAPI members."""

    def __init__(
        self,
        *,
        snapshot_db: str | None = None,
        snapshot_backend: Any = None,
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
    ) -> None:
        _check_cap("max_concurrent_tasks", max_concurrent_tasks)
        _check_cap("max_sync_threads", max_sync_threads)
        _check_seconds("shutdown_grace", shutdown_grace)
        _check_seconds("checkpoint_timeout", checkpoint_timeout)
        _check_seconds("snapshot_interval", snapshot_interval)
        _check_seconds("merged_list_ttl", merged_list_ttl)
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
        self.store = self.table  # fastapi-taskflow's name for the in-memory records
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
        self._live: dict[str, _Live] = {}
        self._listeners: list[Listener] = []
        self._root: Supervisor | None = None
        self._supervisors: dict[str, Supervisor] = {}

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
        if self._cipher is not None:
            payload = self._cipher.encrypt_call(args, kwargs)
            args, kwargs = (), {}
        record = TaskRecord(
            task_id=str(uuid.uuid4()),
            func_name=definition.name,
            status=TaskStatus.PENDING,
            args=args,
            kwargs=kwargs,
            created_at=utcnow(),
            idempotency_key=idempotency_key,
            tags=dict(tags) if tags else {},
            encrypted_payload=payload,
        )
        self._live[record.task_id] = _Live(definition, contextvars.copy_context())
        if idempotency_key is None:
            self.table.add(record)
        else:
            holder = self.table.add_unless_key_held(record)
            if holder is not None:  # another thread took the key in between
                del self._live[record.task_id]
                return holder, False
        if self._listeners:
            self._notify(record)
        return record.task_id, True

    async def dispatch(self, task_id: str) -> None:
        """Start a PENDING task: as a supervised actor when the lifespan runs, else inline, here and now."""
        live = self._live.get(task_id)
        record = self.table.get(task_id)
        if (
            live is None
            or record is None
            or record.status is not TaskStatus.PENDING
            or live.handle is not None
        ):
            return  # cancelled before it started, unknown, or already dispatched
        definition = live.definition
        attempt = self._attempt_callable(record, definition)
        root = self._root
        if root is None:
            await self._run_inline(record, live, attempt)
            return
        supervisor = self._supervisors.get(definition.policy.name)
        if supervisor is None:
            supervisor = self._supervisors[definition.policy.name] = root.child(definition.policy)
        try:
            live.handle = supervisor.start_soon(
                attempt, name=definition.name, key=task_id, context=live.context
            )
        except SupervisorClosed:
            self._tracker.finish(record, TaskStatus.INTERRUPTED, reason="shutdown")

    async def _run_inline(self, record: TaskRecord, live: _Live, attempt: Callable[[], Any]) -> None:
        definition = live.definition

        async def run() -> None:
            await run_supervised(
                attempt,
                policy=definition.policy,
                name=definition.name,
                key=record.task_id,
                hooks=[self._tracker],
            )

        # A task group of one, so the child runs in (a copy of) the context captured by add_task.
        async with anyio.create_task_group() as tg:
            live.context.run(tg.start_soon, run)
        await self._dispatcher.drain()

    def _attempt_callable(self, record: TaskRecord, definition: TaskDefinition) -> Callable[[], Any]:
        func = definition.func
        on_log = self._on_log
        cipher = self._cipher

        def arguments() -> tuple[tuple[Any, ...], dict[str, Any]]:
            # Encrypted arguments are decrypted here, inside the actor, and nowhere else.
            if record.encrypted_payload is None:
                return record.args, record.kwargs
            if cipher is None:
                raise PayloadError("the task's arguments are encrypted but no encrypt_args_key is configured")
            return cipher.decrypt_call(record.encrypted_payload)

        def scope() -> TaskScope:
            info = current_attempt()
            return TaskScope(record, info.attempt - 1 if info is not None else 0, on_log)

        if definition.is_async:

            async def run_async_attempt() -> Any:
                args, kwargs = arguments()
                token = bind(scope())
                try:
                    return await func(*args, **kwargs)
                finally:
                    unbind(token)

            return run_async_attempt

        def run_sync_attempt() -> Any:
            args, kwargs = arguments()
            token = bind(scope())
            try:
                return func(*args, **kwargs)
            finally:
                unbind(token)

        return run_sync_attempt

    # -- state changes (called by the tracker and the actions) -----------------------------------------

    def transition(self, record: TaskRecord, status: TaskStatus) -> None:
        """Move a record to a new state and fan the change out (metrics, observers, listeners)."""
        self.table.set_status(record, status)
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

    # -- actions ---------------------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord:
        """The record of `task_id`; TaskNotFound when unknown."""
        record = self.table.get(task_id) if isinstance(task_id, str) else None
        if record is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        return record

    def query(self, **filters: Any) -> Page:
        """Filtered, cursor-paged records, newest first (see TaskTable.query)."""
        return self.table.query(**filters)

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a pending task (it will never run) or a running one; InvalidTaskState otherwise."""
        record = self.get(task_id)
        if record.status.is_terminal:
            raise InvalidTaskState(
                f"task {task_id} is {record.status.value}: only pending or running tasks can be cancelled"
            )
        live = self._live.get(task_id)
        handle = live.handle if live is not None else None
        if record.status is TaskStatus.RUNNING and handle is None:
            raise InvalidTaskState(
                f"task {task_id} runs inline (no app lifespan is running), so it cannot be cancelled"
            )
        if handle is not None and not handle.cancel(reason="cancelled"):
            return record  # it finished in the meantime: its own outcome stands
        self._tracker.finish(record, TaskStatus.CANCELLED, reason="cancelled")
        return record

    def retry(self, task_id: str) -> TaskRecord:
        """Create a new PENDING task repeating a FAILED or INTERRUPTED one; the caller dispatches it."""
        record = self.get(task_id)
        if record.status not in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
            raise InvalidTaskState(
                f"task {task_id} is {record.status.value}: only failed or interrupted tasks can be retried"
            )
        definition = self.registry.get(record.func_name)
        new = TaskRecord(
            task_id=str(uuid.uuid4()),
            func_name=definition.name,
            status=TaskStatus.PENDING,
            args=record.args,
            kwargs=dict(record.kwargs),
            created_at=utcnow(),
            idempotency_key=record.idempotency_key,
            tags=dict(record.tags),
            encrypted_payload=record.encrypted_payload,
        )
        self._live[new.task_id] = _Live(definition, contextvars.copy_context())
        self.table.add(new)
        if self._listeners:
            self._notify(new)
        return new

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True while `running()` holds the supervision tree open."""
        return self._root is not None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TaskRuntime]:
        """Own the tasks for the duration of the block (the app's lifespan): drain, then cancel, on exit."""
        if self._root is not None:
            raise RuntimeError("this task manager is already running (one lifespan at a time)")
        root = Supervisor(
            Policy(
                name="taskflow", max_concurrency=self.max_concurrent_tasks, max_threads=self.max_sync_threads
            ),
            name="taskflow",
            hooks=[self._tracker],
            shutdown_grace=self.shutdown_grace,
            checkpoint_timeout=self.checkpoint_timeout,
        )
        async with anyio.create_task_group() as tg:
            await tg.start(self._dispatcher.run)
            try:
                async with root:
                    self._root = root
                    yield self
            finally:
                self._root = None
                self._supervisors.clear()
                self._interrupt_undispatched()
                tg.cancel_scope.cancel()

    def _interrupt_undispatched(self) -> None:
        # Tasks accepted but never handed to a supervisor (their response was still being sent).
        for task_id, live in list(self._live.items()):
            record = self.table.get(task_id)
            if record is not None and live.handle is None and record.status is TaskStatus.PENDING:
                self._tracker.finish(record, TaskStatus.INTERRUPTED, reason="shutdown")

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
