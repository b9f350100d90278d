"""fastapi-taskflow 0.5.0 compatibility: re-exports for `from fastapi_taskflow.store import ...`.

`TaskStore` is the type of `task_manager.store`: 0.5.0's methods over the in-memory records. It is not
the durable-store protocol `taskflow.stores.TaskStore`, which backends implement.
"""

from ._compat_store import CompatTaskStore as TaskStore

__all__ = ["TaskStore"]
