"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.loggers.base import ...`."""

from ..observers import LifecycleEvent as LifecycleEvent
from ..observers import LogEvent as LogEvent
from ..observers import TaskObserver as TaskObserver

__all__ = ["LifecycleEvent", "LogEvent", "TaskObserver"]
