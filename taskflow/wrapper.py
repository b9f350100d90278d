"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.wrapper import ...`.

`ManagedBackgroundTasks` is re-exported from the package face (`taskflow`), which already carries it: this
module, like every compatibility module, depends on the public face only, never on `taskflow.web` itself.
"""

from . import ManagedBackgroundTasks as ManagedBackgroundTasks

__all__ = ["ManagedBackgroundTasks"]
