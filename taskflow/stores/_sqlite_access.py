"""`SqliteStore`'s audit log and session revocation (`AuditStore`, `SessionStore`, schema version 2).

`SqliteAccess` holds the protocol methods (mixed into `SqliteStore`, which supplies `_call`); the functions
below are the SQL, run on the store's thread like those of `_sqlite_ops`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._access import AuditEntry, SessionStatus
from ._common import check_limit, parse_utc, utc_text

T = TypeVar("T")

_FIELDS = "entry_id, at, actor, client, action, target, outcome, detail"
_VERSION = "session_version"


def _immediate(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        conn.rollback()
        raise
    conn.execute("COMMIT")
    return result


def append_audit(conn: sqlite3.Connection, entries: list[AuditEntry], keep: int) -> None:
    rows = [
        (e.entry_id, utc_text(e.at), e.actor, e.client, e.action, e.target, e.outcome, e.detail)
        for e in entries
    ]

    def run() -> None:
        sql = f"INSERT OR IGNORE INTO taskflow_audit ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        conn.executemany(sql, rows)
        # The retention bound: the primary key walks newest first to the `keep`-th entry; older ones go.
        conn.execute(
            "DELETE FROM taskflow_audit WHERE entry_id < "
            "(SELECT entry_id FROM taskflow_audit ORDER BY entry_id DESC LIMIT 1 OFFSET ?)",
            (keep - 1,),
        )

    _immediate(conn, run)


def audit_page(conn: sqlite3.Connection, limit: int, before: str | None) -> list[AuditEntry]:
    where, params = ("WHERE entry_id < ?", (before, limit)) if before is not None else ("", (limit,))
    rows = conn.execute(
        f"SELECT {_FIELDS} FROM taskflow_audit {where} ORDER BY entry_id DESC LIMIT ?", params
    ).fetchall()
    entries = []
    for entry_id, at, actor, client, action, target, outcome, detail in rows:
        when = parse_utc(at)
        assert when is not None  # NOT NULL column
        entries.append(AuditEntry(entry_id, when, actor, client, action, target, outcome, detail))
    return entries


def revoke_session(conn: sqlite3.Connection, session_id: str, expires: float) -> None:
    def run() -> None:
        conn.execute("DELETE FROM taskflow_revoked_sessions WHERE expires <= ?", (time.time(),))
        conn.execute(
            "INSERT INTO taskflow_revoked_sessions (session_id, expires) VALUES (?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET expires = max(expires, excluded.expires)",
            (session_id, expires),
        )

    _immediate(conn, run)


def session_status(conn: sqlite3.Connection, session_id: str) -> SessionStatus:
    # One statement, so both answers come from the same snapshot.
    revoked, version = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM taskflow_revoked_sessions WHERE session_id = ? AND expires > ?),"
        " (SELECT value FROM taskflow_settings WHERE name = ?)",
        (session_id, time.time(), _VERSION),
    ).fetchone()
    return SessionStatus(bool(revoked), version or 0)


def bump_session_version(conn: sqlite3.Connection) -> int:
    def run() -> int:
        conn.execute(
            "INSERT INTO taskflow_settings (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (_VERSION,),
        )
        (value,) = conn.execute("SELECT value FROM taskflow_settings WHERE name = ?", (_VERSION,)).fetchone()
        return int(value)

    return _immediate(conn, run)


class SqliteAccess:
    """The `AuditStore` and `SessionStore` methods of `SqliteStore`."""

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:  # pragma: no cover - SqliteStore's
        raise NotImplementedError

    async def append_audit(self, entries: Sequence[AuditEntry], *, keep: int) -> None:
        """Insert the entries and trim to the newest `keep`, in one IMMEDIATE transaction."""
        check_limit(keep)
        await self._call(append_audit, list(entries), keep)

    async def audit_page(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Newest first on the primary key, before the entry id `before` when given."""
        check_limit(limit)
        return await self._call(audit_page, limit, before)

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        """Remember the session as revoked until `expires`; rows past their expiry are dropped."""
        await self._call(revoke_session, session_id, float(expires))

    async def session_status(self, session_id: str) -> SessionStatus:
        """Revoked or not, and the session version, in one SELECT."""
        return await self._call(session_status, session_id)

    async def bump_session_version(self) -> int:
        """Add one to the session version (an upsert) and return it."""
        return await self._call(bump_session_version)
