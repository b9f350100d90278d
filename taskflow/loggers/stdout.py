"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.loggers.stdout import ...`."""

from ..observers import StdoutLogger as StdoutLogger

__all__ = ["StdoutLogger"]
