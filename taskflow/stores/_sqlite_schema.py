"""The SQLite schema of `SqliteStore`: its versions, forward migrations, and record <-> row conversion.

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` takes a file from version i to i + 1;
version 0 is an empty file (or one that only holds other tables, e.g. fastapi-taskflow's
`task_snapshots`, which is left alone). Migrations only ever append: a released entry never changes. Every
table is prefixed `taskflow_` so the file can be shared with an application's own tables.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .._codec import decode_call, encode_call
from .._models import AttemptRecord, TaskRecord, TaskStatus
from ._common import parse_utc, utc_text
from ._paging import RELEASES_KEY

_V1 = (
    """CREATE TABLE taskflow_tasks (
        task_id TEXT PRIMARY KEY,
        func_name TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        start_time TEXT,
        end_time TEXT,
        retries_used INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        stacktrace TEXT,
        status_reason TEXT,
        logs TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '{}',
        attempts TEXT NOT NULL DEFAULT '[]',
        idempotency_key TEXT,
        call TEXT NOT NULL,
        encrypted_payload BLOB,
        owner TEXT NOT NULL,
        requeue INTEGER NOT NULL DEFAULT 0
    )""",
    # Newest-first listing, alone or filtered by status or function: each filter walks its own index in
    # (created_at, task_id) order, so a page costs `limit` rows, not a scan.
    "CREATE INDEX taskflow_tasks_created ON taskflow_tasks (created_at, task_id)",
    "CREATE INDEX taskflow_tasks_status ON taskflow_tasks (status, created_at, task_id)",
    "CREATE INDEX taskflow_tasks_func ON taskflow_tasks (func_name, created_at, task_id)",
    "CREATE INDEX taskflow_tasks_end ON taskflow_tasks (end_time) WHERE end_time IS NOT NULL",
    # Tags in their own table so `tag=(key, value)` is an index lookup; the JSON column serves reads.
    """CREATE TABLE taskflow_tags (
        task_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (task_id, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX taskflow_tags_kv ON taskflow_tags (key, value)",
    "CREATE TABLE taskflow_idempotency (key TEXT PRIMARY KEY, task_id TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE taskflow_instances (instance_id TEXT PRIMARY KEY, alive_until REAL NOT NULL) WITHOUT ROWID",
)

# v2: the W3C traceparent of the span that submitted the task, so a task run again after a restart links
# its spans back to the request's trace (NULL without OpenTelemetry, and in every older row).
_V2 = ("ALTER TABLE taskflow_tasks ADD COLUMN trace_context TEXT",)

# v3: the admin's audit log and session revocation (`AuditStore`, `SessionStore`). Existing files
# gain the tables on their next open; their task tables are untouched.
_V3 = (
    """CREATE TABLE taskflow_audit (
        entry_id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        client TEXT,
        action TEXT NOT NULL,
        target TEXT,
        outcome TEXT NOT NULL,
        detail TEXT
    ) WITHOUT ROWID""",
    "CREATE TABLE taskflow_revoked_sessions (session_id TEXT PRIMARY KEY, expires REAL NOT NULL)"
    " WITHOUT ROWID",
    "CREATE INDEX taskflow_revoked_sessions_expires ON taskflow_revoked_sessions (expires)",
    "CREATE TABLE taskflow_settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
)

# v4: the task's last checkpoint (JSON text, or "fernet:" and a token when arguments are encrypted), so a
# task requeued at shutdown resumes from its saved progress (NULL until a task saves one, and in older rows).
_V4 = ("ALTER TABLE taskflow_tasks ADD COLUMN checkpoint TEXT",)

# v5: the key feed (`SqliteStore.key_changes`): triggers log, in commit order, every claim of an idempotency
# key and every release (its holder turned failed, cancelled or interrupted), so other processes can mirror
# the keys by reading the rows after the last one they saw. The log keeps its newest KEY_LOG_LIMIT rows.
KEY_LOG_LIMIT = 10_000
_RELEASED = "'cancelled', 'failed', 'interrupted'"  # as of v5 (v6 adds rejected): migrations never change
_LOG_RELEASE = (
    "INSERT INTO taskflow_key_log (key, holder) SELECT key, NULL FROM taskflow_idempotency"
    " WHERE key = new.idempotency_key AND task_id = new.task_id;"
)
_V5 = (
    "CREATE TABLE taskflow_key_log (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, holder TEXT)",
    f"""CREATE TRIGGER taskflow_key_claimed AFTER INSERT ON taskflow_idempotency BEGIN
        INSERT INTO taskflow_key_log (key, holder) VALUES (new.key, new.task_id);
        DELETE FROM taskflow_key_log WHERE seq <= last_insert_rowid() - {KEY_LOG_LIMIT:d};
    END""",
    # A record's first write can already be its failure (group commit coalesces its states), hence both.
    f"""CREATE TRIGGER taskflow_key_released AFTER UPDATE OF status ON taskflow_tasks
        WHEN new.idempotency_key IS NOT NULL AND new.status IN ({_RELEASED}) AND old.status IS NOT new.status
        BEGIN {_LOG_RELEASE} END""",
    f"""CREATE TRIGGER taskflow_key_released_new AFTER INSERT ON taskflow_tasks
        WHEN new.idempotency_key IS NOT NULL AND new.status IN ({_RELEASED})
        BEGIN {_LOG_RELEASE} END""",
)

# v6: schedules (`ScheduleStore`, `_sqlite_schedules`): each periodic schedule's last claimed slot and pause
# flag, the run tickets (a claimed run until its task record is committed), and the waiting one-off runs.
_V6 = (
    """CREATE TABLE taskflow_schedules (
        name TEXT PRIMARY KEY,
        last_slot TEXT,
        last_run_id TEXT,
        paused INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    """CREATE TABLE taskflow_schedule_runs (
        run_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        schedule TEXT,
        slot TEXT,
        run_key TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE taskflow_one_offs (
        run_key TEXT PRIMARY KEY,
        func_name TEXT NOT NULL,
        fire_at TEXT NOT NULL,
        call TEXT NOT NULL,
        encrypted_payload BLOB,
        tags TEXT NOT NULL DEFAULT '{}',
        created_at TEXT,
        run_id TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX taskflow_one_offs_due ON taskflow_one_offs (fire_at, run_key) WHERE run_id IS NULL",
)

# v7: a REJECTED task (refused at add_task: its queue or the backlog was full) releases its key too: the two
# release triggers are made again with every status of RELEASES_KEY.
_RELEASED_V7 = ", ".join(f"'{s.value}'" for s in sorted(RELEASES_KEY))
_V7 = (
    "DROP TRIGGER IF EXISTS taskflow_key_released",
    "DROP TRIGGER IF EXISTS taskflow_key_released_new",
    f"""CREATE TRIGGER taskflow_key_released AFTER UPDATE OF status ON taskflow_tasks
        WHEN new.idempotency_key IS NOT NULL AND new.status IN ({_RELEASED_V7})
            AND old.status IS NOT new.status
        BEGIN {_LOG_RELEASE} END""",
    f"""CREATE TRIGGER taskflow_key_released_new AFTER INSERT ON taskflow_tasks
        WHEN new.idempotency_key IS NOT NULL AND new.status IN ({_RELEASED_V7})
        BEGIN {_LOG_RELEASE} END""",
)

# v8: a one-off run's own queue and priority (`schedule_once(..., queue=, priority=)`); NULL: its function's.
_V8 = (
    "ALTER TABLE taskflow_one_offs ADD COLUMN queue TEXT",
    "ALTER TABLE taskflow_one_offs ADD COLUMN priority INTEGER",
)

# v9: the key releases are logged by `_sqlite_ops.write` itself, for the few records that hold a key, instead
# of by the two release triggers: SQLite runs an AFTER trigger's program for every row its statement touches
# (WHEN is tested inside it), so they cost every task's every state change a share of its commit
# (docs/benchmarks.md, the fifth round). Claims are still logged by `taskflow_key_claimed`.
_V9 = (
    "DROP TRIGGER IF EXISTS taskflow_key_released",
    "DROP TRIGGER IF EXISTS taskflow_key_released_new",
)

MIGRATIONS: list[tuple[str, ...]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9]
"""MIGRATIONS[i] is the list of statements that takes schema version i to i + 1."""


def schema_version() -> int:
    """The version this code writes (and the newest it can read)."""
    return len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file to the current version, inside the caller's (IMMEDIATE) transaction."""
    (found,) = conn.execute("PRAGMA user_version").fetchone()
    current = schema_version()
    if found > current:
        raise RuntimeError(
            f"{path} has taskflow schema version {found}, newer than this taskflow understands ({current}); "
            "upgrade anyio-taskflow"
        )
    for version in range(found, current):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
    if found != current:
        conn.execute(f"PRAGMA user_version = {current:d}")


COLUMNS = (
    "task_id, func_name, status, created_at, start_time, end_time, retries_used, error, stacktrace, "
    "status_reason, logs, tags, attempts, idempotency_key, call, encrypted_payload, owner, requeue, "
    "trace_context, checkpoint"
)
UPSERT = (
    f"INSERT INTO taskflow_tasks ({COLUMNS}) VALUES ({', '.join('?' * 20)}) "
    "ON CONFLICT (task_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS.split(", ")[1:])
)
CHANGING_COLUMNS = (
    "status",
    "start_time",
    "end_time",
    "retries_used",
    "error",
    "stacktrace",
    "status_reason",
    "logs",
    "attempts",
    "owner",
    "requeue",
    "checkpoint",
)
"""What changes over a task's life. The rest (func_name, created_at, tags, idempotency_key, call,
encrypted_payload, trace_context) is fixed when the task is made."""
LOG_RELEASE = (
    "INSERT INTO taskflow_key_log (key, holder) SELECT key, NULL FROM taskflow_idempotency"
    " WHERE key = ? AND task_id = ?"
    " AND NOT EXISTS (SELECT 1 FROM taskflow_tasks WHERE task_id = ? AND status = ?)"
)
"""Logs, to the key feed, that a record about to be written in a state of `RELEASES_KEY` lets go of its key
(parameters: key, task_id, task_id, status), unless its stored row is in that state already: what the v5 and
v7 release triggers logged, run for the keyed records only."""
UPDATE_CHANGING = (
    "UPDATE taskflow_tasks SET " + ", ".join(f"{c} = ?" for c in CHANGING_COLUMNS) + " WHERE task_id = ?"
)


# One encoder, made once: json.dumps() with options builds a new encoder per call, which dominated the
# cost of a write. Empty containers (most records) skip encoding altogether.
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _attempts_json(record: TaskRecord, start: str | None, end: str | None) -> str:
    """`_json([[number, start, end, error], ...])`, written out by hand. `start` and `end` are the texts of
    the record's start_time and end_time: the first attempt starts and the last one ends at those very
    datetimes, so their texts are reused rather than formatted again. (Times are UTC text, which JSON
    needs no escaping for.)"""
    attempts = record.attempts
    if not attempts:
        return "[]"
    parts = []
    for a in attempts:
        began = start if start is not None and a.start_time is record.start_time else utc_text(a.start_time)
        ended = a.end_time
        if ended is None:
            ended_json = "null"
        elif end is not None and ended is record.end_time:
            ended_json = f'"{end}"'
        else:
            ended_json = f'"{utc_text(ended)}"'
        error = "null" if a.error is None else _json(a.error)
        parts.append(f'[{a.number:d},"{began}",{ended_json},{error}]')
    return f"[{','.join(parts)}]"


def status_text(status: TaskStatus | str) -> str:
    """The stored text of a status (a member's own value: no enum lookup on the common path)."""
    text: str = status._value_ if type(status) is TaskStatus else TaskStatus(status).value
    return text


def is_terminal(status: TaskStatus | str) -> bool:
    """Whether a status is final (a member attribute read on the common path)."""
    return status.is_terminal if type(status) is TaskStatus else TaskStatus(status).is_terminal


def _state_columns(record: TaskRecord) -> tuple[str, str | None, str | None, str, str]:
    """The encoded columns every state change rewrites: status, start, end, logs JSON, attempts JSON."""
    began = record.start_time
    start = None if began is None else utc_text(began)
    ended = record.end_time
    end = None if ended is None else utc_text(ended)
    logs = _json(list(record.logs)) if record.logs else "[]"
    return status_text(record.status), start, end, logs, _attempts_json(record, start, end)


def to_row(record: TaskRecord, owner: str, requeue: bool) -> tuple[Any, ...]:
    """The row for one record; raises TypeError when its args cannot be encoded."""
    status, start, end, logs, attempts = _state_columns(record)
    return (
        record.task_id,
        record.func_name,
        status,
        utc_text(record.created_at),
        start,
        end,
        record.retries_used,
        record.error,
        record.stacktrace,
        record.status_reason,
        logs,
        _json(dict(record.tags)) if record.tags else "{}",
        attempts,
        record.idempotency_key,
        encode_call(record.args, record.kwargs),
        None if record.encrypted_payload is None else bytes(record.encrypted_payload),
        owner,
        int(requeue),
        record.trace_context,
        record.checkpoint,
    )


def changing_row(record: TaskRecord, owner: str, requeue: bool) -> tuple[Any, ...]:
    """The parameters of `UPDATE_CHANGING` for one record: its changing columns, then its task_id."""
    status, start, end, logs, attempts = _state_columns(record)
    return (
        status,
        start,
        end,
        record.retries_used,
        record.error,
        record.stacktrace,
        record.status_reason,
        logs,
        attempts,
        owner,
        int(requeue),
        record.checkpoint,
        record.task_id,
    )


def from_row(row: sqlite3.Row, *, with_args: bool) -> TaskRecord:
    """The record a row holds; args are decoded only `with_args` (PayloadError if unreadable)."""
    args, kwargs = decode_call(row["call"]) if with_args else ((), {})
    payload = row["encrypted_payload"]
    created = parse_utc(row["created_at"])
    assert created is not None  # NOT NULL column
    return TaskRecord(
        task_id=row["task_id"],
        func_name=row["func_name"],
        status=TaskStatus(row["status"]),
        args=args,
        kwargs=kwargs,
        created_at=created,
        start_time=parse_utc(row["start_time"]),
        end_time=parse_utc(row["end_time"]),
        retries_used=row["retries_used"],
        error=row["error"],
        logs=json.loads(row["logs"]),
        stacktrace=row["stacktrace"],
        idempotency_key=row["idempotency_key"],
        tags=json.loads(row["tags"]),
        encrypted_payload=None if payload is None else bytes(payload),
        attempts=[
            AttemptRecord(number, start, parse_utc(end), error)
            for number, start_text, end, error in json.loads(row["attempts"])
            if (start := parse_utc(start_text)) is not None
        ],
        status_reason=row["status_reason"],
        trace_context=row["trace_context"],
        checkpoint=row["checkpoint"],
        instance=row["owner"],
    )
