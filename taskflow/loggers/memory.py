"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.loggers.memory import ...`."""

from ..observers import InMemoryLogger as InMemoryLogger

__all__ = ["InMemoryLogger"]
