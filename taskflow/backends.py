"""fastapi-taskflow 0.5.0's backend names, mapped onto `taskflow.stores`.

`SqliteBackend("tasks.db")` is a `SqliteStore` with fastapi-taskflow's signature. `SnapshotBackend` is the
`TaskStore` protocol: a custom backend implements `TaskStore` (fastapi-taskflow's abstract `save`/`load`
methods are replaced by it) and proves itself with `taskflow.testing.StoreContract`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

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


_PLANNED = {"RedisBackend": "the Redis store is planned but not released yet; use SqliteBackend meanwhile"}
"""fastapi-taskflow 0.5.0 backends taskflow does not provide yet, and why."""

if not TYPE_CHECKING:  # hidden from type checkers, so a typo in any other name stays a type error

    def __getattr__(name: str) -> object:
        # `from taskflow.backends import RedisBackend` raises an ImportError that says why, which is also
        # what `try: ... except ImportError:` fallbacks for optional backends expect.
        reason = _PLANNED.get(name)
        if reason is not None:
            raise ImportError(f"cannot import {name} from taskflow.backends: {reason}", name=__name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
