"""`MemoryStore`: the reference `TaskStore`, in process memory, for tests and as the executable spec.

Each operation runs without an await between its reads and writes, so on one event loop it is atomic.
Records are kept as copies with their args encoded by `encode_call`, exactly as a durable store keeps them:
a caller mutating a record afterwards changes nothing stored, and args that could not be stored in SQLite
cannot be stored here either.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Self

from anyio.lowlevel import checkpoint

from .._codec import decode_call, encode_call
from .._exceptions import PayloadError
from .._models import TaskRecord, TaskStatus, id_matches
from ._access import AuditEntry, SessionStatus
from ._common import check_limit, check_ttl, copy_record, cursor_position, utc_text
from ._memory_access import MemoryAccess
from ._memory_schedules import MemoryScheduleMethods, MemorySchedules
from ._paging import RELEASES_KEY, Page, encode_cursor
from ._protocol import FinishedRun, RecoveredTask, StoreSummary

__all__ = ["MemoryStore"]

_LIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})


@dataclass(slots=True)
class _Entry:
    record: TaskRecord  # a private copy with args=() and kwargs={}; `call` holds them
    call: str
    owner: str
    requeue: bool

    def order(self) -> tuple[str, str]:
        return (utc_text(self.record.created_at), self.record.task_id)


class MemoryStore(MemoryScheduleMethods):
    """In-memory `TaskStore`; several handles to the same data are the same object."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._keys: dict[str, str] = {}
        self._alive_until: dict[str, float] = {}
        self._access = MemoryAccess()  # the audit log and revoked sessions
        self._schedules = MemorySchedules(self._stored_status, self._is_alive)
        self._open = False

    def __repr__(self) -> str:
        return f"MemoryStore(records={len(self._entries)}, open={self._open})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _stored_status(self, task_id: str) -> TaskStatus | None:
        entry = self._entries.get(task_id)
        return entry.record.status if entry is not None else None

    def _is_alive(self, instance_id: str) -> bool:
        return self._alive_until.get(instance_id, 0.0) > time.time()

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("the store is not open: call `await store.open()` first")

    async def open(self) -> None:
        """Mark the store usable (idempotent)."""
        await checkpoint()
        self._open = True

    async def close(self) -> None:
        """Mark the store closed; the data stays for a later `open()` (idempotent)."""
        await checkpoint()
        self._open = False

    async def write(
        self, records: Sequence[TaskRecord], *, owner: str, requeue_ids: frozenset[str] = frozenset()
    ) -> None:
        """Upsert every record, all or nothing (encoding happens before anything is stored)."""
        await checkpoint()
        self._check_open()
        staged = []
        for record in records:
            call = encode_call(record.args, record.kwargs)  # TypeError here leaves the store untouched
            stored = replace(copy_record(record), args=(), kwargs={}, instance=owner)
            staged.append(_Entry(stored, call, owner, record.task_id in requeue_ids))
        for entry in staged:
            self._entries[entry.record.task_id] = entry

    async def get(self, task_id: str) -> TaskRecord | None:
        """A fresh copy of the stored record with its args decoded, or None."""
        await checkpoint()
        self._check_open()
        entry = self._entries.get(task_id)
        if entry is None:
            return None
        args, kwargs = decode_call(entry.call)
        return replace(copy_record(entry.record), args=args, kwargs=kwargs)

    async def query(
        self,
        *,
        statuses: frozenset[TaskStatus] | None = None,
        func_name: str | None = None,
        tag: tuple[str, str] | None = None,
        since: datetime | None = None,
        task_id_prefix: str | None = None,
        task_id_search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Filtered records, newest first, without args (see `TaskStore.query`)."""
        await checkpoint()
        self._check_open()
        check_limit(limit)
        after = cursor_position(cursor) if cursor is not None else None
        since_text = utc_text(since) if since is not None else None
        matching = [
            e
            for e in self._entries.values()
            if (statuses is None or e.record.status in statuses)
            and (func_name is None or e.record.func_name == func_name)
            and (tag is None or e.record.tags.get(tag[0]) == tag[1])
            and (since_text is None or utc_text(e.record.created_at) >= since_text)
            and (task_id_prefix is None or e.record.task_id.startswith(task_id_prefix))
            and (task_id_search is None or id_matches(e.record.task_id, task_id_search))
            and (after is None or e.order() < after)
        ]
        matching.sort(key=_Entry.order, reverse=True)
        page = [copy_record(e.record) for e in matching[:limit]]
        next_cursor = encode_cursor(page[-1]) if len(matching) > limit else None
        return Page(page, next_cursor)

    async def counts(self) -> dict[TaskStatus, int]:
        """Stored records per status, zeros included."""
        await checkpoint()
        self._check_open()
        counts = dict.fromkeys(TaskStatus, 0)
        for entry in self._entries.values():
            counts[entry.record.status] += 1
        return counts

    async def summary(self, *, recent: int) -> StoreSummary:
        """Counts per function and status, and the `recent` terminal records that ended last."""
        await checkpoint()
        self._check_open()
        check_limit(recent)
        counts: dict[str, dict[TaskStatus, int]] = {}
        ended: list[tuple[str, FinishedRun]] = []
        for entry in self._entries.values():
            r = entry.record
            per_status = counts.setdefault(r.func_name, {})
            per_status[r.status] = per_status.get(r.status, 0) + 1
            if r.status.is_terminal and r.end_time is not None:
                run = FinishedRun(r.func_name, r.status, r.end_time.timestamp(), r.duration)
                ended.append((utc_text(r.end_time), run))
        latest = heapq.nlargest(recent, ended, key=lambda item: item[0])
        return StoreSummary(counts, [run for _, run in latest])

    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        """Bind `key` to `task_id` unless a task that has not failed holds it (then return its id)."""
        await checkpoint()
        self._check_open()
        holder = self._keys.get(key)
        if holder is not None and holder != task_id:
            entry = self._entries.get(holder)
            if entry is None or entry.record.status not in RELEASES_KEY:
                return holder
        self._keys[key] = task_id
        return None

    async def held_keys(self, *, limit: int) -> dict[str, str]:
        """Keys held by SUCCESS tasks, newest first, at most `limit`."""
        await checkpoint()
        self._check_open()
        held = [
            (entry.record.created_at, key, holder)
            for key, holder in self._keys.items()
            if (entry := self._entries.get(holder)) is not None and entry.record.status is TaskStatus.SUCCESS
        ]
        held.sort(reverse=True)
        return {key: holder for _, key, holder in held[:limit]}

    async def heartbeat(self, instance_id: str, *, ttl: float) -> None:
        """The instance is alive until now + ttl (wall clock, as processes sharing a store agree on it)."""
        check_ttl(ttl)
        await checkpoint()
        self._check_open()
        self._alive_until[instance_id] = time.time() + ttl

    async def forget_instance(self, instance_id: str) -> None:
        """Drop the instance's heartbeat."""
        await checkpoint()
        self._check_open()
        self._alive_until.pop(instance_id, None)

    async def claim_orphans(self, instance_id: str) -> list[RecoveredTask]:
        """Re-own the live records of instances without a live heartbeat, oldest first."""
        await checkpoint()
        self._check_open()
        now = time.time()
        orphans = [
            e
            for e in self._entries.values()
            if e.record.status in _LIVE
            and e.owner != instance_id
            and self._alive_until.get(e.owner, now) <= now
        ]
        orphans.sort(key=_Entry.order)
        recovered = []
        for entry in orphans:
            previous, entry.owner = entry.owner, instance_id
            record, requeue = copy_record(entry.record), entry.requeue
            try:
                record.args, record.kwargs = decode_call(entry.call)
            except PayloadError as exc:
                record.status_reason = f"stored arguments are unreadable: {exc}"
                requeue = False
            recovered.append(RecoveredTask(record, requeue, previous))
        return recovered

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete terminal records that ended before `cutoff`."""
        await checkpoint()
        self._check_open()
        limit = utc_text(cutoff)
        doomed = [
            task_id
            for task_id, e in self._entries.items()
            if e.record.status.is_terminal
            and e.record.end_time is not None
            and utc_text(e.record.end_time) < limit
        ]
        return self._remove(doomed)

    async def delete(self, task_ids: Sequence[str]) -> int:
        """Delete the terminal records among `task_ids`."""
        await checkpoint()
        self._check_open()
        doomed = [
            t
            for t in dict.fromkeys(task_ids)
            if t in self._entries and self._entries[t].record.status.is_terminal
        ]
        return self._remove(doomed)

    def _remove(self, task_ids: list[str]) -> int:
        gone = set(task_ids)
        for task_id in gone:
            del self._entries[task_id]
        for key in [k for k, holder in self._keys.items() if holder in gone]:
            del self._keys[key]
        return len(gone)

    # ---- optional: AuditStore and SessionStore ---------------------------------------------------------

    async def append_audit(self, entries: Sequence[AuditEntry], *, keep: int) -> None:
        """Add audit entries, keep the newest `keep`."""
        self._check_open()
        await self._access.append_audit(entries, keep=keep)

    async def audit_page(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """Audit entries newest first, before the entry id `before` when given."""
        self._check_open()
        return await self._access.audit_page(limit=limit, before=before)

    async def revoke_session(self, session_id: str, *, expires: float) -> None:
        """Remember the session as revoked until `expires`."""
        self._check_open()
        await self._access.revoke_session(session_id, expires=expires)

    async def session_status(self, session_id: str) -> SessionStatus:
        """Revoked or not, and the session version."""
        self._check_open()
        return await self._access.session_status(session_id)

    async def bump_session_version(self) -> int:
        """Void every session issued so far."""
        self._check_open()
        return await self._access.bump_session_version()
