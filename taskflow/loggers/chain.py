"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.loggers.chain import ...`."""

from ..observers import LoggerChain as LoggerChain

__all__ = ["LoggerChain"]
