"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.wrapper import ...`.

`ManagedBackgroundTasks` lives in `taskflow.web` (the FastAPI side); new code imports it from `taskflow`.
"""

from .web import ManagedBackgroundTasks as ManagedBackgroundTasks

__all__ = ["ManagedBackgroundTasks"]
