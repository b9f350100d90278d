"""`SqliteStore`'s schedules (`ScheduleStore`, schema version 6; a one-off's queue and priority since 8).

`SqliteSchedules` holds the protocol methods (mixed into `SqliteStore`, which supplies `_call`); the
functions below are the SQL, run on the store's thread. Every claim is one IMMEDIATE transaction: the
compare-and-set of the last slot, the look at the previous run's status and the ticket are one unit, so
two processes on one file can never both claim a slot.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ._common import check_limit, parse_utc, utc_text, utc_text_or_none
from ._schedule_protocol import AdoptedRun, ClaimOutcome, OneOffEntry, ScheduleState

T = TypeVar("T")

_ONCE = "run_key, func_name, fire_at, call, encrypted_payload, tags, created_at, run_id, queue, priority"


def _immediate(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        conn.rollback()
        raise
    conn.execute("COMMIT")
    return result


def _live(conn: sqlite3.Connection, run_id: str | None) -> bool:
    """Whether the run is live: its stored record PENDING or RUNNING, or no record yet but a ticket."""
    if run_id is None:
        return False
    row = conn.execute("SELECT status FROM taskflow_tasks WHERE task_id = ?", (run_id,)).fetchone()
    if row is not None:
        return row[0] in ("pending", "running")
    return (
        conn.execute("SELECT 1 FROM taskflow_schedule_runs WHERE run_id = ?", (run_id,)).fetchone()
        is not None
    )


def _state_row(conn: sqlite3.Connection, name: str) -> tuple[str | None, str | None, int, int] | None:
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT last_slot, last_run_id, paused, skipped FROM taskflow_schedules WHERE name = ?", (name,)
    ).fetchone()


def schedule_states(conn: sqlite3.Connection, names: list[str]) -> dict[str, ScheduleState]:
    states = {}
    for name in names:
        row = _state_row(conn, name)
        if row is None:
            states[name] = ScheduleState(name)
        else:
            last_slot, last_run_id, paused, skipped = row
            states[name] = ScheduleState(name, parse_utc(last_slot), last_run_id, bool(paused), skipped)
    return states


def _save_state(
    conn: sqlite3.Connection, name: str, slot: str | None, run_id: str | None, added: int
) -> None:
    conn.execute(
        "INSERT INTO taskflow_schedules (name, last_slot, last_run_id, skipped) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET last_slot = coalesce(excluded.last_slot, last_slot),"
        " last_run_id = coalesce(excluded.last_run_id, last_run_id), skipped = skipped + excluded.skipped",
        (name, slot, run_id, added),
    )


def claim_slot(
    conn: sqlite3.Connection,
    name: str,
    slot: datetime,
    expected: datetime | None,
    run_id: str | None,
    owner: str,
    exclusive: bool,
    also_skipped: int,
) -> ClaimOutcome:
    def run() -> ClaimOutcome:
        row = _state_row(conn, name)
        stored = row[0] if row is not None else None
        if stored != utc_text_or_none(expected) or (expected is not None and slot <= expected):
            return ClaimOutcome.LOST
        paused = bool(row[2]) if row is not None else False
        last_run = row[1] if row is not None else None
        if run_id is None or paused or (exclusive and _live(conn, last_run)):
            _save_state(conn, name, utc_text(slot), None, also_skipped + 1)
            return ClaimOutcome.SKIPPED
        _save_state(conn, name, utc_text(slot), run_id, also_skipped)
        conn.execute(
            "INSERT INTO taskflow_schedule_runs (run_id, owner, schedule, slot) VALUES (?, ?, ?, ?)",
            (run_id, owner, name, utc_text(slot)),
        )
        return ClaimOutcome.CLAIMED

    return _immediate(conn, run)


def claim_extra(
    conn: sqlite3.Connection, name: str, run_id: str, owner: str, exclusive: bool
) -> ClaimOutcome:
    def run() -> ClaimOutcome:
        row = _state_row(conn, name)
        if exclusive and row is not None and _live(conn, row[1]):
            return ClaimOutcome.BUSY
        _save_state(conn, name, None, run_id, 0)
        conn.execute(
            "INSERT INTO taskflow_schedule_runs (run_id, owner, schedule) VALUES (?, ?, ?)",
            (run_id, owner, name),
        )
        return ClaimOutcome.CLAIMED

    return _immediate(conn, run)


def set_paused(conn: sqlite3.Connection, name: str, paused: bool) -> None:
    conn.execute(
        "INSERT INTO taskflow_schedules (name, paused) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET paused = excluded.paused",
        (name, int(paused)),
    )


def release_run(conn: sqlite3.Connection, run_id: str) -> None:
    def run() -> None:
        conn.execute("DELETE FROM taskflow_schedule_runs WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM taskflow_one_offs WHERE run_id = ?", (run_id,))

    _immediate(conn, run)


def _entry(row: sqlite3.Row | tuple[Any, ...]) -> OneOffEntry:
    run_key, func_name, fire_at, call, payload, tags, created_at, run_id, queue, priority = tuple(row)
    when = parse_utc(fire_at)
    assert when is not None  # NOT NULL column
    return OneOffEntry(
        run_key, func_name, when, call, payload, json.loads(tags), parse_utc(created_at), run_id, queue,
        priority,
    )  # fmt: skip


def adopt_runs(conn: sqlite3.Connection, instance_id: str) -> list[AdoptedRun]:
    def run() -> list[AdoptedRun]:
        now = time.time()
        rows = conn.execute(
            "SELECT run_id, owner, schedule, slot, run_key FROM taskflow_schedule_runs WHERE owner != ?"
            " AND owner NOT IN (SELECT instance_id FROM taskflow_instances WHERE alive_until > ?)"
            " ORDER BY run_id",
            (instance_id, now),
        ).fetchall()
        adopted = []
        for run_id, owner, schedule, slot, run_key in rows:
            conn.execute(
                "UPDATE taskflow_schedule_runs SET owner = ? WHERE run_id = ?", (instance_id, run_id)
            )
            once = None
            if run_key is not None:
                found = conn.execute(f"SELECT {_ONCE} FROM taskflow_one_offs WHERE run_key = ?", (run_key,))
                entry = found.fetchone()
                once = _entry(entry) if entry is not None else None
            adopted.append(AdoptedRun(run_id, owner, schedule, parse_utc(slot), once))
        return adopted

    return _immediate(conn, run)


def put_once(conn: sqlite3.Connection, entry: OneOffEntry) -> bool:
    def run() -> bool:
        row = conn.execute(
            "SELECT run_id FROM taskflow_one_offs WHERE run_key = ?", (entry.run_key,)
        ).fetchone()
        if row is not None and row[0] is not None:
            return False
        conn.execute(
            f"INSERT OR REPLACE INTO taskflow_one_offs ({_ONCE}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (entry.run_key, entry.func_name, utc_text(entry.fire_at), entry.call, entry.encrypted_payload,
             json.dumps(entry.tags, sort_keys=True), utc_text_or_none(entry.created_at), entry.queue,
             entry.priority),
        )  # fmt: skip
        return True

    return _immediate(conn, run)


def cancel_once(conn: sqlite3.Connection, run_key: str) -> bool:
    cursor = conn.execute("DELETE FROM taskflow_one_offs WHERE run_key = ? AND run_id IS NULL", (run_key,))
    return cursor.rowcount > 0


def list_once(conn: sqlite3.Connection, limit: int, before: datetime | None) -> list[OneOffEntry]:
    where, params = ("AND fire_at < ?", (utc_text(before), limit)) if before is not None else ("", (limit,))
    rows = conn.execute(
        f"SELECT {_ONCE} FROM taskflow_one_offs WHERE run_id IS NULL {where}"
        " ORDER BY fire_at, run_key LIMIT ?",
        params,
    ).fetchall()
    return [_entry(row) for row in rows]


def claim_once(conn: sqlite3.Connection, run_key: str, run_id: str, owner: str) -> OneOffEntry | None:
    def run() -> OneOffEntry | None:
        row = conn.execute(
            f"SELECT {_ONCE} FROM taskflow_one_offs WHERE run_key = ? AND run_id IS NULL", (run_key,)
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE taskflow_one_offs SET run_id = ? WHERE run_key = ?", (run_id, run_key))
        conn.execute(
            "INSERT INTO taskflow_schedule_runs (run_id, owner, run_key) VALUES (?, ?, ?)",
            (run_id, owner, run_key),
        )
        return dataclasses.replace(_entry(row), run_id=run_id)

    return _immediate(conn, run)


class SqliteSchedules:
    """The `ScheduleStore` methods of `SqliteStore`."""

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:  # pragma: no cover - SqliteStore's
        raise NotImplementedError

    async def schedule_states(self, names: Sequence[str]) -> dict[str, ScheduleState]:
        """One SELECT per schedule, in one snapshot-free pass (each row is read atomically)."""
        return await self._call(schedule_states, list(names))

    async def claim_slot(
        self,
        name: str,
        *,
        slot: datetime,
        expected: datetime | None,
        run_id: str | None,
        owner: str,
        exclusive: bool,
        also_skipped: int = 0,
    ) -> ClaimOutcome:
        """Compare-and-set of the last slot and the ticket, in one IMMEDIATE transaction."""
        return await self._call(claim_slot, name, slot, expected, run_id, owner, exclusive, also_skipped)

    async def claim_extra(self, name: str, *, run_id: str, owner: str, exclusive: bool) -> ClaimOutcome:
        """An extra run (run now), refused while the last run is live when `exclusive`."""
        return await self._call(claim_extra, name, run_id, owner, exclusive)

    async def set_paused(self, name: str, paused: bool) -> None:
        """An upsert of the pause flag."""
        await self._call(set_paused, name, paused)

    async def release_run(self, run_id: str) -> None:
        """Delete the ticket and the one-off it claimed."""
        await self._call(release_run, run_id)

    async def adopt_runs(self, instance_id: str) -> list[AdoptedRun]:
        """Re-own the tickets of owners without a live heartbeat."""
        return await self._call(adopt_runs, instance_id)

    async def put_once(self, entry: OneOffEntry) -> bool:
        """Insert or replace the unclaimed one-off."""
        return await self._call(put_once, entry)

    async def cancel_once(self, run_key: str) -> bool:
        """Delete the unclaimed one-off."""
        return await self._call(cancel_once, run_key)

    async def list_once(self, *, limit: int, before: datetime | None = None) -> list[OneOffEntry]:
        """Unclaimed one-offs on the partial fire-time index."""
        check_limit(limit)
        return await self._call(list_once, limit, before)

    async def claim_once(self, run_key: str, *, run_id: str, owner: str) -> OneOffEntry | None:
        """Claim the unclaimed one-off and write its ticket, in one transaction."""
        return await self._call(claim_once, run_key, run_id, owner)
