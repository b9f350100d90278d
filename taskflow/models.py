"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.models import ...`.

The records live in `taskflow._models`; new code imports them from `taskflow`.
"""

from ._models import TaskConfig as TaskConfig
from ._models import TaskRecord as TaskRecord
from ._models import TaskStatus as TaskStatus

__all__ = ["TaskConfig", "TaskRecord", "TaskStatus"]
