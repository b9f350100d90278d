"""The live task table: every record this process knows, in memory, with bounded history.

It owns the records of live tasks (pending, running) and the most recent terminal ones, the idempotency
index, per-status counters, and the filtered, cursor-paged queries the HTTP API serves. Terminal records
beyond `max_terminal_records` are evicted oldest-first, so memory stays flat under any load, and all but the
newest `KEEP_UNPACKED` of them are kept packed (see `_packed`): a few hundred bytes each, and nothing for the
garbage collector to walk. A packed record is rebuilt on each read, so `get` returns a new, equal
`TaskRecord` for it each time; a live record is returned as the object the runtime changes.

Records are added from request handlers (sync routes run in worker threads) and changed on the event loop:
structural changes take a lock; readers copy under the GIL.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ._models import TaskRecord, TaskStatus, id_matches
from ._packed import (
    Packed,
    created_at_of,
    end_time_of,
    func_name_of,
    idempotency_key_of,
    pack,
    status_of,
    tag_of,
    task_id_of,
    unpack,
)
from .stores import RELEASES_KEY, Page, decode_cursor, encode_cursor


class TaskTable:
    """In-memory records with an idempotency index and status counters."""

    def __init__(self, *, max_terminal_records: int | None = 10_000) -> None:
        if max_terminal_records is not None and max_terminal_records < 0:
            raise ValueError("max_terminal_records must be >= 0 or None")
        self._records: dict[str, TaskRecord | Packed] = {}
        self._by_key: dict[str, str] = {}
        self._terminal_order: deque[str] = deque()
        self._unpacked: deque[str] = deque()  # terminal ids, oldest first, not packed yet
        self._counts: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)
        self._max_terminal = max_terminal_records
        self._lock = threading.Lock()
        self.total_added = 0
        self.evicted = 0
        self._newest: TaskRecord | None = None
        # Keys of succeeded tasks no longer in memory (evicted, or held before a restart): SUCCESS is
        # final, so the answer never goes stale. Bounded, oldest dropped first.
        self._settled_keys: dict[str, str] = {}
        self._ordered = True

    def __len__(self) -> int:
        return len(self._records)

    def get(self, task_id: str) -> TaskRecord | None:
        """The record with this id, or None (a new copy each time for a packed, finished record)."""
        item = self._records.get(task_id)
        if item is None or isinstance(item, TaskRecord):
            return item
        return unpack(item)

    def add(self, record: TaskRecord) -> None:
        """Add a new record (its idempotency key, if any, now points to it)."""
        with self._lock:
            self._insert(record)

    def add_unless_key_held(self, record: TaskRecord) -> str | None:
        """Atomically: if a non-failed task holds the record's idempotency key, return its id; else add."""
        key = record.idempotency_key
        with self._lock:
            if key is not None:
                holder = self._key_holder(key)
                if holder is not None:
                    return holder
            self._insert(record)
        return None

    def _insert(self, record: TaskRecord) -> None:
        # Keep insertion order == (created_at, task_id) order so that a page is a walk from the newest end
        # that stops after `limit` matches. Threads may insert a few microseconds out of order: such a record
        # is nudged just past the newest one. Anything older (a record restored from a store) marks the
        # table unordered, and queries fall back to sorting.
        last = self._newest
        key = (record.created_at, record.task_id)
        if last is not None and key <= (last.created_at, last.task_id):
            if not record.status.is_terminal and last.created_at - record.created_at < _NUDGE_LIMIT:
                record.created_at = last.created_at + _ONE_MICROSECOND
            else:
                self._ordered = False
        if self._newest is None or (record.created_at, record.task_id) > (
            self._newest.created_at,
            self._newest.task_id,
        ):
            self._newest = record
        self._records[record.task_id] = record
        self._counts[record.status] += 1
        self.total_added += 1
        if record.idempotency_key is not None:
            self._by_key[record.idempotency_key] = record.task_id
        if record.status.is_terminal:
            self._note_terminal(record.task_id)

    def _key_holder(self, key: str) -> str | None:
        task_id = self._by_key.get(key)
        held = self._records.get(task_id) if task_id is not None else None
        if held is None:
            return self._settled_keys.get(key)
        if status_of(held) in RELEASES_KEY:
            other = self._settled_keys.get(key)  # another instance may have claimed it since
            return other if other != task_id else None
        return task_id

    def remember_settled_keys(self, keys: dict[str, str]) -> None:
        """Keys held by succeeded tasks that are not in memory (the store's, at startup)."""
        with self._lock:
            for key, task_id in keys.items():
                self._settle_key(key, task_id)

    def mirror_key(self, key: str, holder: str | None) -> None:
        """A key claimed by `holder` on some instance (None: released), from the store's key feed."""
        with self._lock:
            if holder is not None:
                self._settle_key(key, holder)
            else:
                self._settled_keys.pop(key, None)

    def _settle_key(self, key: str, task_id: str) -> None:
        settled = self._settled_keys
        settled.pop(key, None)
        settled[key] = task_id
        if len(settled) > SETTLED_KEYS_LIMIT:
            del settled[next(iter(settled))]

    def key_holder(self, key: str) -> str | None:
        """The id of the task holding `key`, if it is not failed, cancelled or interrupted."""
        with self._lock:
            return self._key_holder(key)

    def set_status(self, record: TaskRecord, status: TaskStatus) -> None:
        """Move a record to `status`, keeping the counters right; evicts old terminal records."""
        with self._lock:
            self._counts[record.status] -= 1
            self._counts[status] += 1
            record.status = status
            if status.is_terminal:
                self._note_terminal(record.task_id)

    def _note_terminal(self, task_id: str) -> None:
        self._terminal_order.append(task_id)
        unpacked = self._unpacked
        unpacked.append(task_id)
        if len(unpacked) > KEEP_UNPACKED:
            self._pack(unpacked.popleft())
        if self._max_terminal is None:
            return
        while len(self._terminal_order) > self._max_terminal:
            old_id = self._terminal_order.popleft()
            old = self._records.get(old_id)
            if old is None:
                continue  # already removed
            status = status_of(old)
            if not status.is_terminal:
                continue  # requeued since
            del self._records[old_id]
            self._counts[status] -= 1
            self.evicted += 1
            key = idempotency_key_of(old)
            if key is not None and self._by_key.get(key) == old_id:
                del self._by_key[key]
                if status is TaskStatus.SUCCESS:
                    self._settle_key(key, old_id)

    def _pack(self, task_id: str) -> None:
        record = self._records.get(task_id)
        if isinstance(record, TaskRecord) and record.status.is_terminal:
            packed = pack(record)
            if packed is not None:
                self._records[task_id] = packed  # same key: the dict keeps its (time) order

    def remove(self, task_ids: Iterable[str]) -> int:
        """Forget these terminal records (history deletion); live ones are never removed.

        The keys they held are released too: the store deletes its bindings with the records, so keeping
        them here would answer a resubmission with the id of a task that no longer exists anywhere.
        """
        removed = 0
        with self._lock:
            for task_id in task_ids:
                item = self._records.get(task_id)
                if item is None or not (status := status_of(item)).is_terminal:
                    continue
                del self._records[task_id]
                self._counts[status] -= 1
                removed += 1
                key = idempotency_key_of(item)
                if key is not None:
                    if self._by_key.get(key) == task_id:
                        del self._by_key[key]
                    if self._settled_keys.get(key) == task_id:
                        del self._settled_keys[key]
        return removed

    def counts(self) -> dict[TaskStatus, int]:
        """Records in memory per status (a copy)."""
        return dict(self._counts)

    def records(self) -> list[TaskRecord]:
        """A snapshot list of every record in memory, oldest first (packed ones rebuilt: costly)."""
        items = list(self._records.values())
        return [item if isinstance(item, TaskRecord) else unpack(item) for item in items]

    def ended_before(self, cutoff: datetime) -> list[str]:
        """The ids of the terminal records that ended before `cutoff`."""
        return [
            task_id_of(item)
            for item in list(self._records.values())
            if status_of(item).is_terminal and (end := end_time_of(item)) is not None and end < cutoff
        ]

    def query(
        self,
        *,
        statuses: frozenset[TaskStatus] | None = None,
        func_name: str | None = None,
        tag: tuple[str, str] | None = None,
        since: datetime | None = None,
        task_id_prefix: str | None = None,
        task_id_search: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """Records matching every given filter, newest first, `limit` at a time after `cursor`."""
        after = _position(cursor) if cursor is not None else None

        def matches(item: TaskRecord | Packed) -> bool:
            return (
                (statuses is None or status_of(item) in statuses)
                and (func_name is None or func_name_of(item) == func_name)
                and (tag is None or tag_of(item, tag[0]) == tag[1])
                and (since is None or created_at_of(item) >= since)
                and (task_id_prefix is None or task_id_of(item).startswith(task_id_prefix))
                and (task_id_search is None or id_matches(task_id_of(item), task_id_search))
            )

        items = list(self._records.values())
        if self._ordered:
            newest_first: Iterable[TaskRecord | Packed] = reversed(items)
        else:
            newest_first = sorted(items, key=_order_key, reverse=True)
        page: list[TaskRecord] = []
        for item in newest_first:
            if after is not None and _order_key(item) >= after:
                continue
            if since is not None and self._ordered and created_at_of(item) < since:
                break  # everything further is older still
            if matches(item):
                if limit is not None and len(page) == limit:
                    return Page(page, encode_cursor(page[-1]))
                page.append(item if isinstance(item, TaskRecord) else unpack(item))
        return Page(page, None)


_NUDGE_LIMIT = timedelta(seconds=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


SETTLED_KEYS_LIMIT = 100_000

KEEP_UNPACKED = 256
"""The newest terminal records stay `TaskRecord` objects: for a moment after a task ends its record is still
read (the dashboard's first page, listeners, the store writer), and a late change to it still shows."""


def _order_key(item: TaskRecord | Packed) -> tuple[datetime, str]:
    return (created_at_of(item), task_id_of(item))


def _position(cursor: str) -> tuple[datetime, str]:
    """Where a cursor points, as an order key (naive times in hand-made cursors are taken as UTC)."""
    created, task_id = decode_cursor(cursor)
    moment = datetime.fromisoformat(created)
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC), task_id)
