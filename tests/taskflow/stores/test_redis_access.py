"""RedisStore's audit log and session revocation beyond the contract: the server expires a revoked session
when its token expires, entries are append-only, the retention bound trims any backlog, and every key sits
under the prefix."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from taskflow._models import new_task_id
from taskflow.stores import AuditEntry, RedisStore
from tests.redis_service import REDIS_URL, client, redis_prefix

pytestmark = [pytest.mark.anyio, pytest.mark.services]

_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def entries(count: int, actor: str = "admin") -> list[AuditEntry]:
    """`count` entries in the order they were made."""
    return [
        AuditEntry(i, _AT, actor, None, "retry", f"t{n}", "ok", "é ünïcode")
        for n, i in enumerate(sorted(new_task_id() for _ in range(count)))
    ]


async def test_a_revoked_session_expires_on_the_server_with_its_token(anyio_backend: str) -> None:
    """The revocation key expires at the token's expiry (PXAT); a later, shorter revocation never shortens
    it."""
    with redis_prefix() as prefix:
        async with RedisStore(REDIS_URL, prefix=prefix) as store:
            until = int(time.time()) + 3600
            await store.revoke_session("s1", expires=until)
            await store.revoke_session("s1", expires=until - 1800)
            key = f"{prefix}:session:revoked:s1"
            with client() as c:
                assert c.execute_command("PEXPIRETIME", key) == until * 1000
            await store.revoke_session("s1", expires=until + 60)
            with client() as c:
                assert c.execute_command("PEXPIRETIME", key) == (until + 60) * 1000
            await store.revoke_session("gone", expires=time.time() - 5)  # nothing left to refuse
            with client() as c:
                assert c.exists(f"{prefix}:session:revoked:gone") == 0
            with pytest.raises(ValueError, match="expires"):
                await store.revoke_session("s2", expires=float("inf"))


async def test_audit_entries_are_append_only_and_the_bound_trims_any_backlog(anyio_backend: str) -> None:
    """Writing an id again changes nothing; lowering keep far below the size trims in one call."""
    with redis_prefix() as prefix:
        async with RedisStore(REDIS_URL, prefix=prefix) as store:
            made = entries(2500)
            await store.append_audit(made[:1], keep=10_000)
            forged = AuditEntry(made[0].entry_id, _AT, "mallory", "1.2.3.4", "retry", "x", "ok")
            await store.append_audit([forged], keep=10_000)
            assert await store.audit_page(limit=5) == made[:1]
            await store.append_audit(made[1:], keep=10_000)
            page = await store.audit_page(limit=2000)  # more than one HMGET chunk of the page script
            assert page == made[::-1][:2000]
            await store.append_audit([], keep=3)
            assert await store.audit_page(limit=10) == made[::-1][:3]
            with client() as c:
                assert c.zcard(f"{prefix}:audit:ids") == 3
                assert c.hlen(f"{prefix}:audit:entries") == 3


async def test_audit_and_session_keys_stay_under_the_prefix(anyio_backend: str) -> None:
    """Two prefixes on one server share nothing: logs, revocations and versions are per prefix."""
    with redis_prefix() as one, redis_prefix() as two:
        async with RedisStore(REDIS_URL, prefix=one) as a, RedisStore(REDIS_URL, prefix=two) as b:
            await a.append_audit(entries(2), keep=10)
            await a.revoke_session("s", expires=time.time() + 60)
            assert await a.bump_session_version() == 1
            assert await b.audit_page(limit=10) == []
            status = await b.session_status("s")
            assert (status.revoked, status.version) == (False, 0)
            with client() as c:
                keys = {k.decode() for k in c.scan_iter(match=f"{one}:*")}
            assert keys == {f"{one}:audit:ids", f"{one}:audit:entries", f"{one}:session:revoked:s",
                            f"{one}:session:version"}  # fmt: skip
