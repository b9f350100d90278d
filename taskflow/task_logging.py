"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.task_logging import ...`.

`task_log` and the task context live in `taskflow._context`; new code imports them from `taskflow`.
"""

from ._context import TaskContext as TaskContext
from ._context import get_task_context as get_task_context
from ._context import task_log as task_log

__all__ = ["TaskContext", "get_task_context", "task_log"]
