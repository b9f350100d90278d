"""The SQL that `SqliteStore` runs: synchronous functions of a connection, called on the store's thread.

Each function is one atomic operation. Those that write open `BEGIN IMMEDIATE`, so they hold the write lock
from their first statement: concurrent processes queue on the lock (busy_timeout) instead of failing to
upgrade a read lock, and every read-then-write (claims, deletes) sees no interleaved writer.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .._exceptions import PayloadError
from .._models import TERMINAL_STATUSES, TaskRecord, TaskStatus
from ._common import parse_utc
from ._paging import RELEASES_KEY
from ._protocol import FinishedRun, RecoveredTask, StoreSummary
from ._sqlite_schema import (
    LOG_RELEASE,
    UPDATE_CHANGING,
    UPSERT,
    changing_row,
    from_row,
    is_terminal,
    migrate,
    status_text,
    to_row,
)

TERMINAL_SQL = ", ".join(f"'{s.value}'" for s in sorted(TERMINAL_STATUSES))
_LIVE_SQL = f"'{TaskStatus.PENDING.value}', '{TaskStatus.RUNNING.value}'"
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """True when the error means "another connection holds the lock" (worth retrying), not a real fault."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES  # extended codes (SQLITE_BUSY_SNAPSHOT...) keep the primary low
    message = str(exc).lower()
    return "locked" in message or "busy" in message


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction that holds the write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.execute("COMMIT")


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def setup(conn: sqlite3.Connection, path: str, synchronous: str) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    with _immediate(conn):  # concurrent first opens from several processes migrate exactly once
        migrate(conn, path)


def execute(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    conn.execute(sql, params)


def get(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    """The full record (decoded here, on the store thread, not on the event loop)."""
    row = conn.execute("SELECT * FROM taskflow_tasks WHERE task_id = ?", (task_id,)).fetchone()
    return None if row is None else from_row(row, with_args=True)


def listing(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], limit: int
) -> tuple[list[TaskRecord], bool]:
    """The first `limit` records of a listing SELECT (without args), and whether more rows followed."""
    rows = conn.execute(sql, params).fetchall()
    return [from_row(row, with_args=False) for row in rows[:limit]], len(rows) > limit


def fetch_all(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
    return conn.execute(sql, params).fetchall()


def summary(conn: sqlite3.Connection, recent: int) -> StoreSummary:
    """Counts per (function, status) and the `recent` records that ended last, read in one snapshot."""
    conn.execute("BEGIN")  # both reads see the same commit, so the figures add up
    try:
        counts = conn.execute(
            "SELECT func_name, status, COUNT(*) FROM taskflow_tasks GROUP BY func_name, status"
        ).fetchall()
        # The partial index on end_time serves this newest-first walk and stops after `recent` rows (a
        # status filter here would make SQLite use the status index and sort every terminal row instead).
        ended = conn.execute(
            "SELECT func_name, status, start_time, end_time FROM taskflow_tasks"
            " WHERE end_time IS NOT NULL ORDER BY end_time DESC LIMIT ?",
            (recent,),
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    by_function: dict[str, dict[TaskStatus, int]] = {}
    for func_name, status, count in counts:
        by_function.setdefault(func_name, {})[TaskStatus(status)] = count
    runs = []
    for func_name, status, start_text, end_text in ended:
        if not TaskStatus(status).is_terminal:
            continue  # only terminal records have an end_time; a hand-written row might not follow that
        end = parse_utc(end_text)
        assert end is not None  # selected WHERE end_time IS NOT NULL
        start = parse_utc(start_text)
        duration = None if start is None else (end - start).total_seconds()
        runs.append(FinishedRun(func_name, TaskStatus(status), end.timestamp(), duration))
    return StoreSummary(by_function, runs)


Fixed = tuple[str, datetime, tuple[Any, ...], dict[str, Any], dict[str, str], str | None, bytes | None]
"""A task's fixed columns as this connection last committed them: func_name, created_at, the args tuple,
the kwargs (name -> the very value object), tags, idempotency key, payload."""

WRITTEN_LIMIT = 65_536
"""At most this many live tasks are remembered per connection (the oldest are forgotten first)."""

_MISSING = object()


class Written:
    """What one connection knows it stored: the fixed columns of the live tasks it committed, valid as long
    as no other connection has committed since (`PRAGMA data_version` tells)."""

    __slots__ = ("data_version", "fixed")

    def __init__(self) -> None:
        self.fixed: dict[str, Fixed] = {}
        self.data_version: int | None = None

    def clear(self) -> None:
        self.fixed.clear()
        self.data_version = None


def _fixed(record: TaskRecord) -> Fixed:
    payload = record.encrypted_payload
    return (
        record.func_name,
        record.created_at,
        record.args,
        dict(record.kwargs),
        dict(record.tags),
        record.idempotency_key,
        None if payload is None else bytes(payload),
    )


def _same_fixed(fixed: Fixed, record: TaskRecord) -> bool:
    """True if `record` would store exactly the fixed columns in `fixed` (arguments compared by identity)."""
    func_name, created_at, args, kwargs, tags, key, payload = fixed
    if (
        record.args is not args
        or record.func_name != func_name
        or record.created_at != created_at
        or record.idempotency_key != key
        or record.encrypted_payload != payload
        or record.tags != tags
        or len(record.kwargs) != len(kwargs)
    ):
        return False
    return all(kwargs.get(name, _MISSING) is value for name, value in record.kwargs.items())


def write(
    conn: sqlite3.Connection,
    records: list[TaskRecord],
    owner: str,
    requeue: frozenset[str],
    written: Written,
) -> None:
    """Upsert `records` in one transaction.

    A live task this connection committed, whose fixed columns are unchanged, has only its changing columns
    updated: no arguments to encode, no tags to rewrite, no index on created_at or func_name to touch.
    Every other record is written whole (an upsert, its tags replaced). The shortcut is taken only while
    no other connection has committed since this one last wrote; a row that is gone anyway is written
    whole. `written` changes only once the transaction has committed, and forgets a task once it is
    terminal. A keyed record that lets go of its key is logged to the key feed first (`LOG_RELEASE`).
    """
    latest = {r.task_id: r for r in records}  # a task listed twice is written once, in its last state
    fixed = written.fixed
    updates: list[TaskRecord] = []
    whole: list[TaskRecord] = []
    releases: list[tuple[str, str, str, str]] = []
    for task_id, record in latest.items():
        known = fixed.get(task_id)
        (updates if known is not None and _same_fixed(known, record) else whole).append(record)
        key = record.idempotency_key
        if key is not None and TaskStatus(record.status) in RELEASES_KEY:
            releases.append((key, task_id, task_id, status_text(record.status)))
    rows = [to_row(r, owner, r.task_id in requeue) for r in whole]  # encode before taking the lock
    changes = [changing_row(r, owner, r.task_id in requeue) for r in updates]
    with _immediate(conn):
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        stale = version != written.data_version  # another connection committed: it may have changed any row
        if releases:
            conn.executemany(LOG_RELEASE, releases)  # before the rows change: it reads their stored status
        if changes and (stale or conn.executemany(UPDATE_CHANGING, changes).rowcount != len(changes)):
            rows.extend(to_row(r, owner, r.task_id in requeue) for r in updates)
            whole.extend(updates)
            updates = []
        if whole:
            tags = [(r.task_id, k, v) for r in whole for k, v in r.tags.items()]
            conn.executemany(UPSERT, rows)
            conn.executemany("DELETE FROM taskflow_tags WHERE task_id = ?", [(r.task_id,) for r in whole])
            conn.executemany("INSERT INTO taskflow_tags (task_id, key, value) VALUES (?, ?, ?)", tags)
    if stale:
        fixed.clear()
        written.data_version = version  # our own commits leave it unchanged
    for record in whole:
        fixed.pop(record.task_id, None)  # (re-)inserted last: the oldest entries are forgotten first
        if not is_terminal(record.status):
            fixed[record.task_id] = _fixed(record)
    for record in updates:
        if is_terminal(record.status):
            del fixed[record.task_id]
    while len(fixed) > WRITTEN_LIMIT:
        del fixed[next(iter(fixed))]


def claim_key(conn: sqlite3.Connection, key: str, task_id: str) -> str | None:
    with _immediate(conn):
        row = conn.execute("SELECT task_id FROM taskflow_idempotency WHERE key = ?", (key,)).fetchone()
        if row is not None and row[0] != task_id:
            holder: str = row[0]
            status = conn.execute("SELECT status FROM taskflow_tasks WHERE task_id = ?", (holder,)).fetchone()
            # A holder not written yet (claimed, its write still queued) holds the key too.
            if status is None or TaskStatus(status[0]) not in RELEASES_KEY:
                return holder
        conn.execute("INSERT OR REPLACE INTO taskflow_idempotency VALUES (?, ?)", (key, task_id))
    return None


def heartbeat(conn: sqlite3.Connection, instance_id: str, ttl: float) -> None:
    conn.execute(
        "INSERT INTO taskflow_instances (instance_id, alive_until) VALUES (?, ?) "
        "ON CONFLICT (instance_id) DO UPDATE SET alive_until = excluded.alive_until",
        (instance_id, time.time() + ttl),
    )


def claim_orphans(conn: sqlite3.Connection, instance_id: str) -> list[RecoveredTask]:
    with _immediate(conn):
        now = time.time()
        conn.execute("DELETE FROM taskflow_instances WHERE alive_until <= ?", (now,))  # absent == expired
        rows = conn.execute(
            f"SELECT * FROM taskflow_tasks WHERE status IN ({_LIVE_SQL}) AND owner != ? "
            "AND owner NOT IN (SELECT instance_id FROM taskflow_instances) ORDER BY created_at, task_id",
            (instance_id,),
        ).fetchall()
        claimed = [(instance_id, r["task_id"]) for r in rows]
        conn.executemany("UPDATE taskflow_tasks SET owner = ? WHERE task_id = ?", claimed)
    recovered = []
    for row in rows:
        requeue = bool(row["requeue"])
        try:
            record = from_row(row, with_args=True)
        except PayloadError as exc:
            record = from_row(row, with_args=False)
            record.status_reason = f"stored arguments are unreadable: {exc}"
            requeue = False
        recovered.append(RecoveredTask(record, requeue, row["owner"]))
    return recovered


def _release_keys(conn: sqlite3.Connection, doomed: str, params: Sequence[Any]) -> None:
    """Unbind the keys the doomed records hold, and log each release to the key feed (`(key, NULL)` in
    `taskflow_key_log`): other processes mirror the keys, and must learn that a deleted holder let go."""
    conn.execute(
        "INSERT INTO taskflow_key_log (key, holder) SELECT key, NULL FROM taskflow_idempotency"
        f" WHERE task_id IN ({doomed})",
        params,
    )
    conn.execute(f"DELETE FROM taskflow_idempotency WHERE task_id IN ({doomed})", params)


def delete_where(conn: sqlite3.Connection, condition: str, params: tuple[Any, ...]) -> int:
    doomed = f"SELECT task_id FROM taskflow_tasks WHERE {condition}"
    with _immediate(conn):
        conn.execute(f"DELETE FROM taskflow_tags WHERE task_id IN ({doomed})", params)
        _release_keys(conn, doomed, params)
        deleted: int = conn.execute(f"DELETE FROM taskflow_tasks WHERE {condition}", params).rowcount
    return deleted


def delete_ids(conn: sqlite3.Connection, task_ids: list[str]) -> int:
    deleted = 0
    with _immediate(conn):
        for chunk in _chunks(task_ids):
            marks = ", ".join("?" * len(chunk))
            condition = f"task_id IN ({marks}) AND status IN ({TERMINAL_SQL})"
            doomed = f"SELECT task_id FROM taskflow_tasks WHERE {condition}"
            conn.execute(f"DELETE FROM taskflow_tags WHERE task_id IN ({doomed})", chunk)
            _release_keys(conn, doomed, chunk)
            deleted += conn.execute(f"DELETE FROM taskflow_tasks WHERE {condition}", chunk).rowcount
    return deleted
