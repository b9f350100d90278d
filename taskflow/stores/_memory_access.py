"""`MemoryAccess`: the audit log and session revocations in process memory.

`MemoryStore` keeps its audit log and revocations here, and the admin uses one on its own when its store
has no `AuditStore` / `SessionStore` (or no store is running): then they last as long as the process.
Each method runs without an await between its reads and writes, so on one event loop it is atomic.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from anyio.lowlevel import checkpoint

from ._access import AuditEntry, SessionStatus
from ._common import check_limit

__all__ = ["MemoryAccess"]


class MemoryAccess:
    """An `AuditStore` and `SessionStore` in memory (no open/close)."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []  # oldest first, sorted by entry_id
        self._revoked: dict[str, float] = {}  # session id -> Unix time it expires anyway
        self._version = 0

    def __repr__(self) -> str:
        return f"MemoryAccess(audit={len(self._entries)}, revoked={len(self._revoked)})"

    async def append_audit(self, entries: Sequence[AuditEntry], *, keep: int) -> None:
        """Add the entries, keep the newest `keep`."""
        check_limit(keep)
        await checkpoint()
        for entry in entries:
            bisect.insort(self._entries, entry, key=lambda e: e.entry_id)
        if len(self._entries) > keep:
            del self._entries[: len(self._entries) - keep]

    async def audit_page(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Newest first, before the entry id `before` when given."""
        check_limit(limit)
        await checkpoint()
        end = len(self._entries)
        if before is not None:
            end = bisect.bisect_left(self._entries, before, key=lambda e: e.entry_id)
        return self._entries[max(0, end - limit) : end][::-1]

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        """Remember the session as revoked until `expires`; expired ones are dropped on the way."""
        await checkpoint()
        now = time.time()
        for sid in [s for s, until in self._revoked.items() if until <= now]:
            del self._revoked[sid]
        self._revoked[session_id] = max(expires, self._revoked.get(session_id, expires))

    async def session_status(self, session_id: str) -> SessionStatus:
        """Revoked (and not yet expired), and the session version."""
        await checkpoint()
        return SessionStatus(self._revoked.get(session_id, 0.0) > time.time(), self._version)

    async def bump_session_version(self) -> int:
        """One more than before."""
        await checkpoint()
        self._version += 1
        return self._version
