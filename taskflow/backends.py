"""fastapi-taskflow 0.5.0's backend names, mapped onto `taskflow.stores`.

`SqliteBackend("tasks.db")` is a `SqliteStore` and `RedisBackend(url)` a `RedisStore`, each with
fastapi-taskflow's signature. `SnapshotBackend` is the
`TaskStore` protocol: a custom backend implements `TaskStore` (fastapi-taskflow's abstract `save`/`load`
methods are replaced by it) and proves itself with `taskflow.testing.StoreContract`. `SnapshotScheduler`
only keeps old code constructing one importable: the group-commit writer replaced it.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING
from typing import Any as _Any

from ._exceptions import ConfigurationError as _ConfigurationError
from .stores import RedisStore as _RedisStore
from .stores import SqliteStore as _SqliteStore
from .stores import TaskStore as _TaskStore

if TYPE_CHECKING:
    from ._runtime import TaskRuntime

__all__ = ["RedisBackend", "SnapshotBackend", "SnapshotScheduler", "SqliteBackend"]

SnapshotBackend = _TaskStore
"""fastapi-taskflow's base class name; in taskflow, custom backends implement the `TaskStore` protocol."""


class SqliteBackend(_SqliteStore):
    """A SQLite store at `db_path` (created if absent), as in fastapi-taskflow 0.5.0.

    `busy_timeout` (seconds) and `synchronous` (`"FULL"`, the default, or `"NORMAL"`) are additive: how
    long to wait for another process's write lock, and whether a commit must survive a power cut (FULL) or
    only a killed process (NORMAL); see `SqliteStore`.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] = "tasks.db",
        *,
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
    ) -> None:
        super().__init__(db_path, busy_timeout=busy_timeout, synchronous=synchronous)


class RedisBackend(_RedisStore):
    """A Redis store at `url`, every key under `prefix`, as in fastapi-taskflow 0.5.0 (the `redis` extra).

    `ttl` (seconds, or None to keep them until `retention_days`) deletes finished records that long after
    they ended; `client_kwargs` go to `redis.Redis.from_url`.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        prefix: str = "fbtm:snapshots",
        ttl: int | None = None,
        **client_kwargs: _Any,
    ) -> None:
        super().__init__(url, prefix=prefix, ttl=ttl, **client_kwargs)


class SnapshotScheduler:
    """Deprecated: superseded by the group-commit writer, which `TaskManager` runs in its lifespan.

    fastapi-taskflow 0.5.0 copied finished records to the backend every `interval` seconds, so a crash lost
    up to `interval` seconds of history. taskflow writes every change as it happens, in batches, and
    commits durable tasks before their response. There is nothing left to schedule: this class keeps
    0.5.0's constructor, `SnapshotScheduler(task_manager, backend=None, interval=60.0,
    requeue_pending=False, db_path=None)` (a `ValueError` when neither `backend` nor `db_path` is given),
    and its attributes, but has none of its methods (`load`, `flush`, `start`, ...). Pass the backend to
    `TaskManager(snapshot_backend=...)` or `TaskManager(snapshot_db=...)` instead. Constructing one emits
    a `DeprecationWarning`.
    """

    def __init__(
        self,
        task_manager: TaskRuntime,
        backend: _TaskStore | None = None,
        interval: float = 60.0,
        requeue_pending: bool = False,
        db_path: str | None = None,
        *,
        retention_days: float | None = None,
    ) -> None:
        warnings.warn(
            "SnapshotScheduler is superseded by the group-commit writer that TaskManager runs: every change "
            "is stored as it happens, so there is no snapshot to schedule. Pass the backend to "
            "TaskManager(snapshot_backend=...) or TaskManager(snapshot_db=...) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        if backend is None:
            if db_path is None:
                raise _ConfigurationError("SnapshotScheduler needs a backend or a db_path")
            backend = SqliteBackend(db_path)
        self.task_manager = task_manager
        self.backend = backend
        self.interval = interval
        self.requeue_pending = requeue_pending
        self.retention_days = retention_days
