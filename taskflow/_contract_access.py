"""The parts of `taskflow.testing.StoreContract` for the admin's optional store capabilities: the audit log
(`AuditStore`) and session revocation (`SessionStore`). A store without them skips these tests; the admin
then keeps both in process memory."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from ._models import new_task_id
from .stores import AuditEntry, AuditStore, SessionStore, TaskStore

_T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _entries(count: int) -> list[AuditEntry]:
    """`count` entries in the order they were made (ids sort the same way)."""
    ids = sorted(new_task_id() for _ in range(count))
    return [
        AuditEntry(entry_id, _T0 + timedelta(seconds=n), f"user{n}", "10.0.0.1" if n % 2 else None,
                   "retry", f"task-{n}", "ok", "why" if n == 0 else None)
        for n, entry_id in enumerate(ids)
    ]  # fmt: skip


class AccessContract:
    """Tests of the audit and session capabilities, mixed into `StoreContract`."""

    async def test_audit_entries_page_newest_first_and_survive_reopening(
        self, store: TaskStore, second: TaskStore
    ) -> None:
        """append_audit keeps every field; audit_page pages newest first; another handle sees them."""
        if not isinstance(store, AuditStore):
            pytest.skip("this store has no audit log: the admin keeps it in memory")
        entries = _entries(5)
        await store.append_audit(entries[:2], keep=100)
        await store.append_audit(entries[2:], keep=100)
        assert isinstance(second, AuditStore)
        first = await second.audit_page(limit=3)
        assert first == entries[::-1][:3]
        rest = await second.audit_page(limit=3, before=first[-1].entry_id)
        assert rest == entries[::-1][3:]
        assert await second.audit_page(limit=3, before=entries[0].entry_id) == []
        with pytest.raises(ValueError, match="limit"):
            await store.audit_page(limit=0)

    async def test_audit_retention_keeps_the_newest(self, store: TaskStore) -> None:
        """keep= bounds the log: the oldest entries go first."""
        if not isinstance(store, AuditStore):
            pytest.skip("this store has no audit log: the admin keeps it in memory")
        entries = _entries(6)
        await store.append_audit(entries[:4], keep=10)
        await store.append_audit(entries[4:], keep=3)
        assert await store.audit_page(limit=10) == entries[::-1][:3]

    async def test_revoked_sessions_are_shared_and_expire(self, store: TaskStore, second: TaskStore) -> None:
        """A revoked session is revoked for every handle until its expiry; others are not."""
        if not isinstance(store, SessionStore):
            pytest.skip("this store has no session revocation: the admin keeps it in memory")
        assert isinstance(second, SessionStore)
        assert (await second.session_status("s1")).revoked is False
        await store.revoke_session("s1", expires=time.time() + 3600)
        await store.revoke_session("s2", expires=time.time() - 1)  # already expired: nothing to refuse
        assert (await second.session_status("s1")).revoked is True
        assert (await second.session_status("s2")).revoked is False
        assert (await second.session_status("s3")).revoked is False

    async def test_session_version_bumps_atomically(self, store: TaskStore, second: TaskStore) -> None:
        """The session version starts at 0 and each bump, from any handle, adds one."""
        if not isinstance(store, SessionStore):
            pytest.skip("this store has no session revocation: the admin keeps it in memory")
        assert isinstance(second, SessionStore)
        assert (await store.session_status("x")).version == 0
        assert await store.bump_session_version() == 1
        assert await second.bump_session_version() == 2
        assert (await store.session_status("x")).version == 2
