"""Building a runtime's collaborators once, in order, and the one list of sinks every task change goes to.

`TaskRuntime` checks its options and hands them here; `compose` returns the wired collaborators and
nothing it builds calls back up into the runtime. Apart from the runtime so that the order of construction
(and which sink exists for which runtime) is read in one place, not between the public methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._actions import TaskActions
from ._actor import Actor, ActorServices
from ._admission import Admission
from ._compat_store import CompatTaskStore
from ._counters import TaskCounters
from ._launcher import Launcher
from ._lifecycle import Lifecycle, Sink
from ._lifespan import Lifespan, Settlement
from ._metrics import MetricsRecorder
from ._persistence import Persistence
from ._queues import QueueSink
from ._schedule_runs import RunStarter
from ._scheduler import Scheduler
from ._sinks import Durability, ListenerSink, ObserverSink, SettleSink, StoreSink
from ._store_gate import StoreGate
from ._task_logs import TaskLogRelay
from ._tracker import Tracker
from .observers import FileLogger, ObserverDispatcher, TaskObserver
from .stores import TaskStore

if TYPE_CHECKING:
    from supervisors import Clock

    from ._encryption import ArgsCipher
    from ._process_pool import ProcessPool
    from ._queues import Queues
    from ._registry import TaskRegistry
    from ._schedules import ScheduleClock
    from ._services import Services
    from ._table import TaskTable


@dataclass(frozen=True, slots=True)
class Collaborators:
    """What `compose` built; the runtime holds each one."""

    listeners: ListenerSink
    counters: TaskCounters
    lifecycle: Lifecycle
    launcher: Launcher
    lifespan: Lifespan
    actions: TaskActions
    store: CompatTaskStore
    scheduler: Scheduler


def file_observers(
    loggers: Sequence[TaskObserver] | None,
    log_file: str | None,
    *,
    max_bytes: int,
    backup_count: int,
    mode: str,
    log_lifecycle: bool,
) -> list[TaskObserver]:
    """The observers given, and a `FileLogger` of `log_file` when one is named."""
    observers = list(loggers or [])
    if log_file is not None:
        observers.append(
            FileLogger(
                log_file,
                max_bytes=max_bytes,
                backup_count=backup_count,
                mode=mode,  # type: ignore[arg-type]  # validated by FileLogger
                log_lifecycle=log_lifecycle,
            )
        )
    return observers


def open_persistence(
    snapshot_db: str | None,
    snapshot_backend: TaskStore | None,
    *,
    heartbeat_interval: float,
    heartbeat_ttl: float,
    retention_days: float | None,
    durable_timeout: float,
) -> Persistence | None:
    """The persistence over `snapshot_backend`, else over SQLite at `snapshot_db`; None without a store."""
    store = snapshot_backend
    if store is None and snapshot_db is not None:
        from .backends import SqliteBackend

        store = SqliteBackend(snapshot_db)
    if store is None:
        return None
    return Persistence(
        store,
        heartbeat_interval=heartbeat_interval,
        heartbeat_ttl=heartbeat_ttl,
        retention_days=retention_days,
        durable_timeout=durable_timeout,
    )


def compose(
    *,
    registry: TaskRegistry,
    table: TaskTable,
    services: Services,
    queues: Queues | None,
    processes: ProcessPool,
    cipher: ArgsCipher | None,
    persistence: Persistence | None,
    dispatcher: ObserverDispatcher,
    requeue_pending: bool,
    max_pending: int | None,
    max_concurrent_tasks: int | None,
    max_sync_threads: int | None,
    shutdown_grace: float,
    checkpoint_timeout: float,
    clock: Clock | None,
    schedule_clock: ScheduleClock,
    maintenance_interval: float,
) -> Collaborators:
    """Make the collaborators, and the one list of sinks every task change goes to."""
    actors: dict[str, Actor] = {}  # tasks not settled yet
    metrics = MetricsRecorder()
    durability = Durability(registry, actors, requeue_pending)
    listeners = ListenerSink()
    counters = TaskCounters()  # totals per function, for `taskflow.metrics`
    sinks: list[Sink] = []
    if persistence is not None:
        sinks.append(StoreSink(persistence, durability, actors))
    if queues is not None:
        sinks.append(QueueSink(queues))  # frees a queue slot the moment its task settles
    if dispatcher.active:
        sinks.append(ObserverSink(dispatcher, actors))  # before SettleSink: it reads the actor
    sinks.append(SettleSink(actors, metrics, counters))
    sinks.append(listeners)
    lifecycle = Lifecycle(table, sinks)
    settlement = Settlement(
        table=table, lifecycle=lifecycle, actors=actors, durability=durability, persistence=persistence
    )
    tracker = Tracker(table, lifecycle, settlement.interrupted)
    logs = TaskLogRelay(dispatcher, lifecycle)
    admission = Admission(
        registry=registry, table=table, lifecycle=lifecycle, actors=actors,
        services=ActorServices(
            logs.emit, cipher, persistence,
            keep_log_context=logs.keep_log_context, on_update=lifecycle.update,
            durable=durability.is_durable, processes=processes,
        ),
        cipher=cipher, persistence=persistence, queues=queues, max_pending=max_pending,
    )  # fmt: skip
    gate = StoreGate(persistence=persistence, durability=durability, actors=actors, lifecycle=lifecycle)
    launcher = Launcher(
        table=table, actors=actors, admission=admission, gate=gate, tracker=tracker, dispatcher=dispatcher,
        clock=clock, queues=queues,
    )  # fmt: skip
    lifespan = Lifespan(
        registry=registry, table=table, lifecycle=lifecycle, launcher=launcher,
        settlement=settlement, tracker=tracker, dispatcher=dispatcher, persistence=persistence,
        max_concurrent_tasks=max_concurrent_tasks, max_sync_threads=max_sync_threads,
        shutdown_grace=shutdown_grace, checkpoint_timeout=checkpoint_timeout,
        services=services, clock=clock,
    )  # fmt: skip
    actions = TaskActions(
        registry=registry, table=table, lifecycle=lifecycle, launcher=launcher, admission=admission,
        gate=gate, metrics=metrics, persistence=persistence,
    )  # fmt: skip
    starter = RunStarter(registry=registry, launcher=launcher, lifecycle=lifecycle, persistence=persistence)
    scheduler = Scheduler(
        starter=starter, table=table, persistence=persistence, clock=schedule_clock,
        maintenance_interval=maintenance_interval,
    )  # fmt: skip
    return Collaborators(
        listeners=listeners, counters=counters, lifecycle=lifecycle,
        launcher=launcher, lifespan=lifespan, actions=actions,
        store=CompatTaskStore(table, lifecycle),  # fastapi-taskflow 0.5.0's `TaskStore`
        scheduler=scheduler,
    )  # fmt: skip
