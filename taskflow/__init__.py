"""taskflow: supervised background tasks for FastAPI, on anyio.

A drop-in for fastapi-taskflow 0.5.0 (change the import line): every task runs as a supervised actor in a
task group that the app's lifespan owns, on asyncio or trio.
"""

from ._codec import UnstoredArgument as UnstoredArgument
from ._codec import register_type as register_type
from ._context import TaskContext as TaskContext
from ._context import get_task_context as get_task_context
from ._context import task_log as task_log
from ._exceptions import BacklogFull as BacklogFull
from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import InvalidTaskState as InvalidTaskState
from ._exceptions import PayloadError as PayloadError
from ._exceptions import ProcessTaskError as ProcessTaskError
from ._exceptions import QueueFull as QueueFull
from ._exceptions import QueueFull as QueueFullError
from ._exceptions import ScheduleNotFound as ScheduleNotFound
from ._exceptions import TaskArgumentError as TaskArgumentError
from ._exceptions import TaskflowError as TaskflowError
from ._exceptions import TaskNotFound as TaskNotFound
from ._exceptions import TaskNotRegistered as TaskNotRegistered
from ._exceptions import TaskRejected as TaskRejected
from ._metrics import TaskManagerStatistics as TaskManagerStatistics
from ._models import AttemptRecord as AttemptRecord
from ._models import TaskConfig as TaskConfig
from ._models import TaskRecord as TaskRecord
from ._models import TaskStatus as TaskStatus
from ._process_pool import ProcessPoolStatistics as ProcessPoolStatistics
from ._queues import QueueConfig as QueueConfig
from ._schedules import ScheduledOnce as ScheduledOnce
from ._services import ActorStatistics as ActorStatistics
from .backends import RedisBackend as RedisBackend
from .backends import SnapshotBackend as SnapshotBackend
from .backends import SnapshotScheduler as SnapshotScheduler
from .backends import SqliteBackend as SqliteBackend
from .observers import FileLogger as FileLogger
from .observers import InMemoryLogger as InMemoryLogger
from .observers import LifecycleEvent as LifecycleEvent
from .observers import LogEvent as LogEvent
from .observers import LoggerChain as LoggerChain
from .observers import StdoutLogger as StdoutLogger
from .observers import StructlogObserver as StructlogObserver
from .observers import TaskObserver as TaskObserver
from .web import ManagedBackgroundTasks as ManagedBackgroundTasks
from .web import TaskAdmin as TaskAdmin
from .web import TaskAuthBackend as TaskAuthBackend
from .web import TaskManager as TaskManager

__all__ = [
    "ActorStatistics",
    "AttemptRecord",
    "BacklogFull",
    "ConfigurationError",
    "FileLogger",
    "InMemoryLogger",
    "InvalidTaskState",
    "LifecycleEvent",
    "LogEvent",
    "LoggerChain",
    "ManagedBackgroundTasks",
    "PayloadError",
    "ProcessPoolStatistics",
    "ProcessTaskError",
    "QueueConfig",
    "QueueFull",
    "QueueFullError",
    "RedisBackend",
    "ScheduleNotFound",
    "ScheduledOnce",
    "SnapshotBackend",
    "SnapshotScheduler",
    "SqliteBackend",
    "StdoutLogger",
    "StructlogObserver",
    "TaskAdmin",
    "TaskArgumentError",
    "TaskAuthBackend",
    "TaskConfig",
    "TaskContext",
    "TaskManager",
    "TaskManagerStatistics",
    "TaskNotFound",
    "TaskNotRegistered",
    "TaskObserver",
    "TaskRecord",
    "TaskRejected",
    "TaskStatus",
    "TaskflowError",
    "UnstoredArgument",
    "get_task_context",
    "register_type",
    "task_log",
]


def _version() -> str:
    # From the installed distribution's metadata; "unknown" (fastapi-taskflow's fallback) when the source
    # tree is imported without being installed.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("anyio-taskflow")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()


def _cli_main() -> int:
    """The `taskflow` command line, for `python -m taskflow` (imported only when used)."""
    from .web import cli_main

    return cli_main()
