"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.loggers import ...`.

The observers live in `taskflow.observers`; new code imports them from there or from `taskflow`. The
submodules `base`, `chain`, `file`, `memory` and `stdout` keep 0.5.0's deeper import paths.
"""

from ..observers import FileLogger as FileLogger
from ..observers import InMemoryLogger as InMemoryLogger
from ..observers import LifecycleEvent as LifecycleEvent
from ..observers import LogEvent as LogEvent
from ..observers import LoggerChain as LoggerChain
from ..observers import StdoutLogger as StdoutLogger
from ..observers import TaskObserver as TaskObserver

__all__ = [
    "FileLogger",
    "InMemoryLogger",
    "LifecycleEvent",
    "LogEvent",
    "LoggerChain",
    "StdoutLogger",
    "TaskObserver",
]
