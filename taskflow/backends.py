"""fastapi-taskflow 0.5.0's backend names, mapped onto `taskflow.stores`.

`SqliteBackend("tasks.db")` is a `SqliteStore` with fastapi-taskflow's signature. `SnapshotBackend` is the
`TaskStore` protocol: a custom backend implements `TaskStore` (fastapi-taskflow's abstract `save`/`load`
methods are replaced by it) and proves itself with `taskflow.testing.StoreContract`.
"""

from __future__ import annotations

import os

from .stores import SqliteStore as _SqliteStore
from .stores import TaskStore as _TaskStore

__all__ = ["SnapshotBackend", "SqliteBackend"]

SnapshotBackend = _TaskStore
"""fastapi-taskflow's base class name; in taskflow, custom backends implement the `TaskStore` protocol."""


class SqliteBackend(_SqliteStore):
    """A SQLite store at `db_path` (created if absent), as in fastapi-taskflow 0.5.0.

    `busy_timeout` (seconds) is additive: how long to wait for another process's write lock.
    """

    def __init__(self, db_path: str | os.PathLike[str] = "tasks.db", *, busy_timeout: float = 30.0) -> None:
        super().__init__(db_path, busy_timeout=busy_timeout)
