"""The change feed of `SqliteStore`: what the other processes sharing the file wrote, found by polling.

SQLite has no notifications, so the feed polls, every `POLL_INTERVAL` seconds, `PRAGMA data_version`: it
changes only when *another* connection has committed to the file, so a process whose peers are idle pays
one pragma per poll. When it changed, one indexed query reads the other owners' live records (`pending`,
`running`, newest `LIVE_LIMIT`) and their records that ended within `LOOKBACK` seconds, and the feed yields
those that differ from what it saw at the last poll. Bounds, by design: a change is seen up to
`POLL_INTERVAL` late; a final state committed more than `LOOKBACK` seconds after it happened (the file was
locked or unwritable that long) is not streamed (listings still show it).

Also here: the key feed. It polls the same pragma; when it changed, it reads the rows of
`taskflow_key_log` (claims and releases of idempotency keys, logged by triggers in commit order) after the
last one it saw. A reader more than `KEY_LOG_LIMIT` rows behind misses the oldest (the claim at dispatch
still catches a duplicate).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._models import TaskStatus
from ._common import utc_text
from ._protocol import StoredChange
from ._sqlite_schema import COLUMNS, from_row

POLL_INTERVAL = 0.5
LOOKBACK = 60.0
LIVE_LIMIT = 1000
_COLUMNS = COLUMNS.replace(" call,", "")  # the listing form: args are never read
_LIVE = f"('{TaskStatus.PENDING.value}', '{TaskStatus.RUNNING.value}')"
_QUERY = (
    f"SELECT * FROM (SELECT {_COLUMNS} FROM taskflow_tasks WHERE status IN {_LIVE} AND owner != ? "
    f"ORDER BY created_at DESC LIMIT {LIVE_LIMIT}) "
    f"UNION ALL SELECT {_COLUMNS} FROM taskflow_tasks WHERE end_time >= ? AND owner != ?"
)


@dataclass(slots=True)
class FeedState:
    """What one feed saw at its last poll: the file's data_version and each record's row."""

    data_version: int | None = None
    seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def poll(conn: sqlite3.Connection, instance_id: str, state: FeedState, emit: bool) -> list[StoredChange]:
    """The records of other owners that changed since the last poll (none when `emit` is False: priming)."""
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    if version == state.data_version:
        return []
    state.data_version = version
    since = utc_text(datetime.fromtimestamp(time.time() - LOOKBACK).astimezone())
    rows = conn.execute(_QUERY, (instance_id, since, instance_id)).fetchall()
    seen: dict[str, tuple[Any, ...]] = {}
    out = []
    for row in rows:
        values = tuple(row)
        task_id = row["task_id"]
        seen[task_id] = values
        if emit and state.seen.get(task_id) != values:
            out.append(StoredChange(from_row(row, with_args=False), row["owner"]))
    state.seen = seen
    return out


@dataclass(slots=True)
class KeyFeedState:
    """What one key feed saw at its last poll: the file's data_version and the last key log row."""

    data_version: int | None = None
    seq: int = 0


def poll_keys(conn: sqlite3.Connection, state: KeyFeedState, emit: bool) -> list[tuple[str, str | None]]:
    """The `(key, holder or None)` logged since the last poll, oldest first (none when priming)."""
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    if version == state.data_version:
        return []
    state.data_version = version
    if not emit:
        (state.seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM taskflow_key_log").fetchone()
        return []
    rows = conn.execute(
        "SELECT seq, key, holder FROM taskflow_key_log WHERE seq > ? ORDER BY seq", (state.seq,)
    ).fetchall()
    if rows:
        state.seq = rows[-1][0]
    return [(key, holder) for _seq, key, holder in rows]
