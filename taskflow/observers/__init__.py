"""Observers: where task log lines and status changes go (files, stdout, structlog, your own code).

The observer classes and events keep fastapi-taskflow 0.5.0's names and signatures; `ObserverDispatcher`
is what the runtime uses to deliver events to them without slowing tasks down.
"""

from ._base import LoggerChain as LoggerChain
from ._base import TaskObserver as TaskObserver
from ._dispatcher import ObserverDispatcher as ObserverDispatcher
from ._dispatcher import ObserverStatistics as ObserverStatistics
from ._events import LifecycleEvent as LifecycleEvent
from ._events import LogEvent as LogEvent
from ._file import FileLogger as FileLogger
from ._processors import drop_keys as drop_keys
from ._processors import redact_keys as redact_keys
from ._stdout import InMemoryLogger as InMemoryLogger
from ._stdout import StdoutLogger as StdoutLogger
from ._structlog import StructlogObserver as StructlogObserver

__all__ = [
    "FileLogger",
    "InMemoryLogger",
    "LifecycleEvent",
    "LogEvent",
    "LoggerChain",
    "ObserverDispatcher",
    "ObserverStatistics",
    "StdoutLogger",
    "StructlogObserver",
    "TaskObserver",
    "drop_keys",
    "redact_keys",
]
