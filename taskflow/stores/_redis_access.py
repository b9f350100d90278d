"""`RedisStore`'s audit log and session revocation (`AuditStore`, `SessionStore`), shared by every instance
that uses the same server and prefix.

Key layout under the store's prefix `P` (next to the task keys listed in `_redis_lua`):

    P:audit:ids            lex sorted set of audit entry ids (all score 0): entry ids are time-ordered text
                           (version 7 UUIDs), so lexicographic order is the log's order, and rank 0 the oldest
    P:audit:entries        hash entry id -> the entry as JSON [at, actor, client, action, target, outcome,
                           detail]
    P:session:revoked:<id> exists while the session is revoked: its value is the token's expiry (Unix ms),
                           and the server deletes it at that moment (PXAT), when the token is refused anyway
    P:session:version      integer: the session version (absent is 0)

Why a sorted set and a hash, not a Redis Stream: the log is ordered and paged by `entry_id`, which each
instance makes itself. Entries from several instances reach the server slightly out of that order, and a
Stream only takes ids above its last one (explicit ids would be refused, server ids would order by arrival,
and the `before` cursor would need a translation). A lex sorted set keeps the entry-id order whatever the
arrival, pages with ZREVRANGEBYLEX, and trims the oldest by rank. One hash holds the entries, so a page is
one HMGET and trimming one HDEL per 1,000, with one key for the whole log instead of one per entry.

Every write is one Lua script (append and trim; revoke with "keep the later expiry"), a page is one read-only
script (the ids and their entries from the same moment), a session check one MULTI of EXISTS and GET.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ._access import AuditEntry, SessionStatus
from ._common import check_limit, parse_utc, utc_text

T = TypeVar("T")

APPEND_AUDIT = r"""
-- ARGV: prefix, keep, then entry id, entry JSON, ... An id already stored is left as it is (append-only).
local ids, entries = ARGV[1] .. ':audit:ids', ARGV[1] .. ':audit:entries'
local keep = tonumber(ARGV[2])
for j = 3, #ARGV, 2 do
  if redis.call('HSETNX', entries, ARGV[j], ARGV[j + 1]) == 1 then redis.call('ZADD', ids, 0, ARGV[j]) end
end
-- The retention bound: drop the oldest (lowest ranks), 1,000 per HDEL (Lua's unpack has a stack limit).
local extra = redis.call('ZCARD', ids) - keep
while extra > 0 do
  local n = math.min(extra, 1000)
  redis.call('HDEL', entries, unpack(redis.call('ZRANGE', ids, 0, n - 1)))
  redis.call('ZREMRANGEBYRANK', ids, 0, n - 1)
  extra = extra - n
end
return 1
"""

AUDIT_PAGE = r"""
-- ARGV: prefix, limit, upper bound ('+' or '(<entry id>'). Returns {id1, json1, id2, json2, ...}.
local ids, entries = ARGV[1] .. ':audit:ids', ARGV[1] .. ':audit:entries'
local found = redis.call('ZREVRANGEBYLEX', ids, ARGV[3], '-', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for start = 1, #found, 1000 do
  local chunk = {unpack(found, start, math.min(start + 999, #found))}
  local values = redis.call('HMGET', entries, unpack(chunk))
  for j = 1, #chunk do
    out[#out + 1] = chunk[j]
    out[#out + 1] = values[j] or ''
  end
end
return out
"""

REVOKE_SESSION = r"""
-- ARGV: prefix, session id, expiry (Unix ms). A later revocation never shortens an earlier one; an expiry
-- already past deletes the key at once (SET ... PXAT in the past), as there is nothing left to refuse.
local key = ARGV[1] .. ':session:revoked:' .. ARGV[2]
local expires = tonumber(ARGV[3])
if expires > tonumber(redis.call('GET', key) or '0') then redis.call('SET', key, ARGV[3], 'PXAT', ARGV[3]) end
return 1
"""

SCRIPTS = {"APPEND_AUDIT": APPEND_AUDIT, "AUDIT_PAGE": AUDIT_PAGE, "REVOKE_SESSION": REVOKE_SESSION}
"""The scripts `RedisStore.open()` loads for these methods, by name."""


def _encode(entry: AuditEntry) -> str:
    fields = [utc_text(entry.at), entry.actor, entry.client, entry.action, entry.target, entry.outcome,
              entry.detail]  # fmt: skip
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def _decode(entry_id: str, raw: str) -> AuditEntry:
    at, actor, client, action, target, outcome, detail = json.loads(raw)
    when = parse_utc(at)
    assert when is not None  # always written
    return AuditEntry(entry_id, when, actor, client, action, target, outcome, detail)


class RedisAccess:
    """The `AuditStore` and `SessionStore` methods of `RedisStore` (which supplies the plumbing below)."""

    def key(self, *parts: str) -> str:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    def _run(self, client: Any, name: str, args: Sequence[Any]) -> Any:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    async def append_audit(self, entries: Sequence[AuditEntry], *, keep: int) -> None:
        """Add the entries and trim to the newest `keep`, in one Lua script."""
        check_limit(keep)
        args: list[Any] = [keep]
        for entry in entries:
            args += [entry.entry_id, _encode(entry)]
        await self._call(self._run, "APPEND_AUDIT", args)

    async def audit_page(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Newest first (ZREVRANGEBYLEX on the entry ids), before the entry id `before` when given."""
        check_limit(limit)
        high = "+" if before is None else f"({before}"
        raw = await self._call(self._run, "AUDIT_PAGE", [limit, high])
        pairs = ((raw[n].decode(), raw[n + 1].decode()) for n in range(0, len(raw), 2))
        return [_decode(entry_id, value) for entry_id, value in pairs if value]

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        """Mark the session revoked until `expires`; the server deletes the mark then (one Lua script)."""
        if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
            raise ValueError(f"expires must be a finite Unix time, got {expires!r}")
        milliseconds = max(1, math.ceil(expires * 1000))
        await self._call(self._run, "REVOKE_SESSION", [session_id, milliseconds])

    async def session_status(self, session_id: str) -> SessionStatus:
        """Revoked or not, and the session version: EXISTS and GET in one MULTI (one round trip)."""
        revoked_key, version_key = self.key("session", "revoked", session_id), self.key("session", "version")

        def run(client: Any) -> tuple[int, bytes | None]:
            pipe = client.pipeline(transaction=True)
            pipe.exists(revoked_key)
            pipe.get(version_key)
            revoked, version = pipe.execute()
            return revoked, version

        revoked, version = await self._call(run)
        return SessionStatus(bool(revoked), int(version) if version is not None else 0)

    async def bump_session_version(self) -> int:
        """INCR the session version and return it: every session issued before is void."""
        return int(await self._call(lambda c: c.incr(self.key("session", "version"))))
