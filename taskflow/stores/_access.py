"""Optional store capabilities of the admin: the audit log (`AuditStore`) and session revocation
(`SessionStore`), with the `AuditEntry` they keep.

Both are optional, like `SummarizingStore`: a store written against `TaskStore` alone keeps working, and the
admin then keeps the audit log and revoked sessions in process memory (lost on restart, not shared between
instances; the docs say so). `MemoryStore`, `SqliteStore` and `RedisStore` implement both; the exported
contract suite (`taskflow.testing.StoreContract`) pins their behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["AuditEntry", "AuditStore", "SessionStatus", "SessionStore"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action taken through the API or the dashboard: who, when, from where, what, and how it ended.

    `entry_id` is a time-ordered id (`taskflow._models.new_task_id`): entries sort newest first by it.
    `actor` is the user or bearer token name (`"anonymous"` without auth), `at` an aware UTC time,
    `client` the client address (None when unknown), `action` a short verb (`retry`, `login_failed`, ...),
    `target` what it acted on (a task id, a window; None when nothing), `outcome` `ok`, `refused` or an
    HTTP status text, and `detail` a short free text (None when nothing to add).
    """

    entry_id: str
    at: datetime
    actor: str
    client: str | None
    action: str
    target: str | None
    outcome: str
    detail: str | None = None


@runtime_checkable
class AuditStore(Protocol):
    """The audit log kept in the store, so it survives restarts and every instance sharing it sees it.

    Entries are append-only: there is no method to change or delete one (only the retention bound drops
    the oldest).
    """

    async def append_audit(self, entries: Sequence[AuditEntry], *, keep: int) -> None:
        """Add `entries` in one transaction, then drop the oldest so at most `keep` (>= 1) remain.

        Redis: one Lua script: HSETNX of each entry's JSON in one hash plus ZADD on a lex entry-id index,
        then HDEL and ZREMRANGEBYRANK of the lowest ranks down to `keep`.
        """
        ...

    async def audit_page(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Up to `limit` (>= 1, else ValueError) entries newest first, only those whose `entry_id` sorts
        before `before` when given (the last id of the previous page).

        Redis: a read-only Lua script: ZREVRANGEBYLEX on the entry-id index from `(before`, then HMGET.
        """
        ...


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """What the store knows about one session: whether it was revoked, and the current session version
    (sessions signed with an older version are void)."""

    revoked: bool
    version: int


@runtime_checkable
class SessionStore(Protocol):
    """Revoked sessions and the session version, shared by every instance (logout holds everywhere)."""

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        """Remember `session_id` as revoked until `expires` (Unix seconds: the token's own expiry, after
        which it is refused anyway); later revocations of the same id keep the later expiry.

        Redis: a Lua script that SETs the revoked-session key with PXAT expires, unless it already expires
        later (the server deletes it when the token expires).
        """
        ...

    async def session_status(self, session_id: str) -> SessionStatus:
        """Whether `session_id` is revoked (and not yet past its expiry), and the session version (0 when
        never bumped).

        Redis: a MULTI of EXISTS revoked-session-key and GET session-version (one round trip).
        """
        ...

    async def bump_session_version(self) -> int:
        """Atomically add one to the session version and return the new value: every session issued
        before is void.

        Redis: INCR session-version.
        """
        ...
