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
from typing import Any

from .._exceptions import PayloadError
from .._models import TERMINAL_STATUSES, TaskRecord, TaskStatus
from .._table import RELEASES_KEY
from ._protocol import RecoveredTask
from ._sqlite_schema import UPSERT, from_row, migrate, to_row

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


def write(conn: sqlite3.Connection, records: list[TaskRecord], owner: str, requeue: frozenset[str]) -> None:
    rows = [to_row(r, owner, r.task_id in requeue) for r in records]  # encode before taking the lock
    tags = [(r.task_id, k, v) for r in records for k, v in r.tags.items()]
    with _immediate(conn):
        conn.executemany(UPSERT, rows)
        conn.executemany("DELETE FROM taskflow_tags WHERE task_id = ?", [(r.task_id,) for r in records])
        conn.executemany("INSERT INTO taskflow_tags (task_id, key, value) VALUES (?, ?, ?)", tags)


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


def delete_where(conn: sqlite3.Connection, condition: str, params: tuple[Any, ...]) -> int:
    doomed = f"SELECT task_id FROM taskflow_tasks WHERE {condition}"
    with _immediate(conn):
        conn.execute(f"DELETE FROM taskflow_tags WHERE task_id IN ({doomed})", params)
        conn.execute(f"DELETE FROM taskflow_idempotency WHERE task_id IN ({doomed})", params)
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
            conn.execute(f"DELETE FROM taskflow_idempotency WHERE task_id IN ({doomed})", chunk)
            deleted += conn.execute(f"DELETE FROM taskflow_tasks WHERE {condition}", chunk).rowcount
    return deleted
