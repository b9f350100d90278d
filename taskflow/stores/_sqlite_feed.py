"""The change feed of `SqliteStore`: what the other processes sharing the file wrote, found by polling.

SQLite has no notifications, so the feed polls, every `POLL_INTERVAL` seconds, `PRAGMA data_version`: it
changes only when *another* connection has committed to the file, so a process whose peers are idle pays
one pragma per poll. When it changed, one indexed query reads the other owners' live records (`pending`,
`running`, newest `LIVE_LIMIT`) and their records that ended within `LOOKBACK` seconds, and the feed yields
those that differ from what it saw at the last poll. Bounds, by design: a change is seen up to
`POLL_INTERVAL` late; a final state committed more than `LOOKBACK` seconds after it happened (the file was
locked or unwritable that long) is not streamed (listings still show it).
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
