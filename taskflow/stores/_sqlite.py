"""`SqliteStore`: the durable `TaskStore` on one SQLite file, with the standard library's `sqlite3`.

One connection per store, used only from worker threads through `anyio.to_thread.run_sync` with a
`CapacityLimiter(1)`: every access is serialised and the event loop never blocks (aiosqlite is not used
because it does not run under trio). The SQL itself is in `_sqlite_ops`; writes and claims take the write
lock up front (`BEGIN IMMEDIATE`). Lock waits go through `busy_timeout`, then a bounded retry with jittered
backoff: "database is locked" does not reach callers under contention.

The journal is WAL: readers never block the writer, and several processes on one host can share the file
(never a network file system: WAL needs shared memory).
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import anyio

from .._exceptions import ConfigurationError
from .._models import SHORT_ID_LENGTH, TaskRecord, TaskStatus
from . import _sqlite_feed as feed
from . import _sqlite_ops as ops
from ._common import check_limit, check_ttl, cursor_position, utc_text
from ._paging import Page, encode_cursor
from ._protocol import RecoveredTask, StoredChange, StoreSummary
from ._sqlite_access import SqliteAccess
from ._sqlite_feed import FeedState
from ._sqlite_schedules import SqliteSchedules
from ._sqlite_schema import COLUMNS

__all__ = ["SqliteStore"]

T = TypeVar("T")

# FULL (the default): every commit is fsynced, so a committed task survives a power cut, not only a killed
# process. With group commit a commit carries a whole batch, so the fsync is paid per batch, not per task.
# NORMAL (opt-in) in WAL mode fsyncs only at checkpoints: a commit survives a killed process, not a power cut
# or an operating-system crash (docs/persistence.md).
SYNCHRONOUS = "FULL"
SYNCHRONOUS_MODES = ("FULL", "NORMAL")

_BUSY_RETRIES = 10
_BUSY_BASE_DELAY = 0.01
_BUSY_MAX_DELAY = 1.0
_LIST_COLUMNS = COLUMNS.replace(" call,", "")  # listings never read (or decode) the args


class SqliteStore(SqliteAccess, SqliteSchedules):
    """A `TaskStore` on the SQLite file at `path`, shared safely by several processes on one host.

    `busy_timeout` is how long (seconds) one attempt waits for another process's write lock before the
    bounded retry takes over. `synchronous` is SQLite's setting for this connection: `"FULL"` (the default:
    a committed task survives a power cut) or `"NORMAL"` (it survives `kill -9` of the process, not a power
    cut or an operating-system crash; commits skip their fsync). The audit log and session revocation
    methods come from `SqliteAccess`, the schedules' from `SqliteSchedules`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0, synchronous: str = SYNCHRONOUS
    ) -> None:
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise TypeError(f"busy_timeout must be a number of seconds, got {busy_timeout!r}")
        if not math.isfinite(busy_timeout) or busy_timeout < 0:
            raise ValueError(f"busy_timeout must be finite and >= 0, got {busy_timeout!r}")
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.path = os.fspath(path)
        self.busy_timeout = float(busy_timeout)
        self.synchronous: str = mode
        self._conn: sqlite3.Connection | None = None
        # The fixed columns of the live tasks this connection committed (see `_sqlite_ops.write`); only
        # touched on the store's thread, and emptied with the connection.
        self._written = ops.Written()
        # Made by open(), in the running event loop: an anyio limiter is bound to the loop that first uses it.
        self._limiter: anyio.CapacityLimiter | None = None

    def __repr__(self) -> str:
        extra = "" if self.synchronous == SYNCHRONOUS else f", synchronous={self.synchronous!r}"
        return f"{type(self).__name__}({self.path!r}, busy_timeout={self.busy_timeout!r}{extra})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- plumbing --------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` on the store's thread, retrying it while another process holds the lock."""
        limiter = self._limiter
        if limiter is None:
            raise RuntimeError(f"{self!r} is not open: call `await store.open()` first")
        return await anyio.to_thread.run_sync(self._retrying, fn, args, limiter=limiter)

    def _retrying(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"{self!r} is not open: call `await store.open()` first")
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                return fn(conn, *args)
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.rollback()
                if not ops.is_busy(exc) or attempt == _BUSY_RETRIES:
                    raise
            # Full jitter: processes that collided do not retry in lockstep. Sleeping blocks only this
            # store's worker thread, never the event loop.
            time.sleep(random.uniform(0, min(_BUSY_MAX_DELAY, _BUSY_BASE_DELAY * 2**attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def open(self) -> None:
        """Connect, switch to WAL and create or migrate the schema (idempotent)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        await anyio.to_thread.run_sync(self._open_sync, limiter=self._limiter)

    def _open_sync(self) -> None:
        if self._conn is not None:
            return
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.OperationalError as exc:
            raise _open_error(self.path, exc) or exc from None
        conn.row_factory = sqlite3.Row
        self._written.clear()
        try:
            self._conn = conn
            self._retrying(ops.setup, (self.path, self.synchronous))
        except BaseException as exc:
            self._conn = None
            conn.close()
            error = _open_error(self.path, exc) if isinstance(exc, sqlite3.OperationalError) else None
            if error is not None:
                raise error from None
            raise

    async def close(self) -> None:
        """Close the connection once pending operations finish (idempotent; `open()` works again)."""
        limiter = self._limiter
        if limiter is None:
            return
        await anyio.to_thread.run_sync(self._close_sync, limiter=limiter)
        self._limiter = None

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        self._written.clear()
        if conn is not None:
            conn.close()

    # ---- the protocol ----------------------------------------------------------------------------------

    async def write(
        self, records: Sequence[TaskRecord], *, owner: str, requeue_ids: frozenset[str] = frozenset()
    ) -> None:
        """Upsert all records in one transaction; args are encoded first (TypeError writes nothing)."""
        await self._call(ops.write, list(records), owner, requeue_ids, self._written)

    async def get(self, task_id: str) -> TaskRecord | None:
        """The full record with decoded args, or None."""
        return await self._call(ops.get, task_id)

    async def task_changes(
        self, instance_id: str, *, subscribed: Callable[[], None] = lambda: None
    ) -> AsyncIterator[list[StoredChange]]:
        """The records other processes write to the file, by polling (`_sqlite_feed`), until cancelled."""
        state = FeedState()
        await self._call(feed.poll, instance_id, state, False)
        subscribed()
        while True:
            await anyio.sleep(feed.POLL_INTERVAL)
            changes = await self._call(feed.poll, instance_id, state, True)
            if changes:
                yield changes

    async def key_changes(
        self, *, subscribed: Callable[[], None] = lambda: None
    ) -> AsyncIterator[tuple[str, str | None]]:
        """Idempotency keys as every process claims them, `(key, holder id)`, and releases them,
        `(key, None)`: the key log of the file, polled every `POLL_INTERVAL` seconds (`_sqlite_feed`).

        Runs until cancelled; claims made before it started are not replayed (callers load `held_keys()`).
        """
        state = feed.KeyFeedState()
        await self._call(feed.poll_keys, state, False)
        subscribed()
        while True:
            await anyio.sleep(feed.POLL_INTERVAL)
            for change in await self._call(feed.poll_keys, state, True):
                yield change

    async def query(
        self,
        *,
        statuses: frozenset[TaskStatus] | None = None,
        func_name: str | None = None,
        tag: tuple[str, str] | None = None,
        since: datetime | None = None,
        task_id_prefix: str | None = None,
        task_id_search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """One indexed SELECT: filters in WHERE, keyset paging on (created_at, task_id), newest first."""
        check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if func_name is not None:
            where.append("func_name = ?")
            params.append(func_name)
        if tag is not None:
            where.append("task_id IN (SELECT task_id FROM taskflow_tags WHERE key = ? AND value = ?)")
            params.extend(tag)
        if since is not None:
            where.append("created_at >= ?")
            params.append(utc_text(since))
        if task_id_prefix is not None:
            where.append("substr(task_id, 1, ?) = ?")
            params.extend((len(task_id_prefix), task_id_prefix))
        if task_id_search is not None:
            # Not indexed: the search box walks the created_at index until it has a page (see docs).
            short = f"substr(task_id, -{SHORT_ID_LENGTH})"
            where.append(f"(substr(task_id, 1, ?) = ? OR substr({short}, 1, ?) = ?)")
            params.extend((len(task_id_search), task_id_search) * 2)
        if cursor is not None:
            where.append("(created_at, task_id) < (?, ?)")
            params.extend(cursor_position(cursor))
        if statuses is not None and not statuses:
            await anyio.lowlevel.checkpoint()
            return Page([], None)
        sql, params = _listing_sql(where, params, statuses, limit + 1)
        records, more = await self._call(ops.listing, sql, tuple(params), limit)
        return Page(records, encode_cursor(records[-1]) if more else None)

    async def counts(self) -> dict[TaskStatus, int]:
        """Stored records per status, zeros included (a covering scan of the status index)."""
        sql = "SELECT status, COUNT(*) FROM taskflow_tasks GROUP BY status"
        rows = await self._call(ops.fetch_all, sql, ())
        counts = dict.fromkeys(TaskStatus, 0)
        for status, count in rows:
            counts[TaskStatus(status)] = count
        return counts

    async def summary(self, *, recent: int) -> StoreSummary:
        """Counts per function and status (one GROUP BY) and the latest-ended records (the end_time index)."""
        check_limit(recent)
        return await self._call(ops.summary, recent)

    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        """Bind `key` to `task_id` unless a non-failed task holds it, in one IMMEDIATE transaction."""
        return await self._call(ops.claim_key, key, task_id)

    async def held_keys(self, *, limit: int) -> dict[str, str]:
        """Keys held by SUCCESS tasks, newest first, at most `limit` (one indexed query)."""
        rows = await self._call(
            ops.fetch_all,
            "SELECT i.key, i.task_id FROM taskflow_idempotency i"
            " JOIN taskflow_tasks t ON t.task_id = i.task_id"
            " WHERE t.status = 'success' ORDER BY t.created_at DESC LIMIT ?",
            (limit,),
        )
        return {key: task_id for key, task_id in rows}

    async def heartbeat(self, instance_id: str, *, ttl: float) -> None:
        """Record that the instance is alive until now + ttl (the clock is read on the store thread)."""
        check_ttl(ttl)
        await self._call(ops.heartbeat, instance_id, float(ttl))

    async def forget_instance(self, instance_id: str) -> None:
        """Drop the instance's heartbeat row."""
        await self._call(ops.execute, "DELETE FROM taskflow_instances WHERE instance_id = ?", (instance_id,))

    async def claim_orphans(self, instance_id: str) -> list[RecoveredTask]:
        """Re-own, in one IMMEDIATE transaction, the live records of instances without a live heartbeat."""
        return await self._call(ops.claim_orphans, instance_id)

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete terminal records that ended before `cutoff`, with their tags and idempotency keys."""
        condition = f"status IN ({ops.TERMINAL_SQL}) AND end_time IS NOT NULL AND end_time < ?"
        return await self._call(ops.delete_where, condition, (utc_text(cutoff),))

    async def delete(self, task_ids: Sequence[str]) -> int:
        """Delete the terminal records among `task_ids`, with their tags and idempotency keys."""
        ids = list(dict.fromkeys(task_ids))
        return await self._call(ops.delete_ids, ids)


_ORDER = " ORDER BY created_at DESC, task_id DESC LIMIT ?"


def _listing_sql(
    where: list[str], params: list[Any], statuses: frozenset[TaskStatus] | None, limit: int
) -> tuple[str, list[Any]]:
    """The SELECT for one page. Several statuses become one index-ordered sub-select per status, merged.

    A single `status IN (...)` would make SQLite gather every matching row and sort them (a million
    successes sorted to show 100); each `status = ?` sub-select instead walks the (status, created_at)
    index and stops after `limit` rows, so the final sort sees at most `limit` rows per status.
    """

    def select(extra: list[str]) -> str:
        clauses = extra + where
        return f"SELECT {_LIST_COLUMNS} FROM taskflow_tasks" + (
            f" WHERE {' AND '.join(clauses)}" if clauses else ""
        )

    if statuses is None:
        return select([]) + _ORDER, [*params, limit]
    values = sorted(TaskStatus(s).value for s in statuses)
    if len(values) == 1:
        return select(["status = ?"]) + _ORDER, [values[0], *params, limit]
    parts = [f"SELECT * FROM ({select(['status = ?'])}{_ORDER})" for _ in values]
    merged: list[Any] = [p for value in values for p in (value, *params, limit)]
    return " UNION ALL ".join(parts) + _ORDER, [*merged, limit]


def _open_error(path: str, exc: sqlite3.OperationalError) -> ConfigurationError | None:
    """One error naming the file and what is wrong with it (sqlite3's message names neither), or None
    when `exc` is not about opening the file (a schema error stays itself)."""
    message = str(exc)
    if "unable to open" not in message and "readonly" not in message:
        return None
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        problem = "it is a directory; give the path of a file, such as tasks.db inside it"
    elif not os.path.isdir(parent):
        problem = f"the directory {parent!r} does not exist; create it first"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"the directory {parent!r} is not writable by this process"
    elif os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        problem = "the file is not readable and writable by this process"
    else:
        problem = message
    return ConfigurationError(f"cannot open the SQLite task store {path!r}: {problem} (sqlite3: {message})")
