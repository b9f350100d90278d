"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.loggers.file import ...`."""

from ..observers import FileLogger as FileLogger

__all__ = ["FileLogger"]
