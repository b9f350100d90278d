"""The store contract: the `TaskStore` protocol every durable store implements, and `RecoveredTask`.

A store keeps task records across restarts and across processes that share it. Every method is async and
every operation is atomic: a store that talks to a server makes each one a single transaction (SQL), a Lua
script or a MULTI/WATCH block (Redis). The exported contract suite (`taskflow.testing.StoreContract`) pins
the behaviour; `MemoryStore` is the reference implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from .._models import TaskRecord, TaskStatus
from ._paging import Page

__all__ = [
    "ChangeFeedStore",
    "FinishedRun",
    "KeyFeedStore",
    "RecoveredTask",
    "StoreSummary",
    "StoredChange",
    "SummarizingStore",
    "TaskStore",
]


@dataclass(frozen=True, slots=True)
class RecoveredTask:
    """A PENDING or RUNNING record taken over from an instance whose heartbeat expired (or never was).

    `requeue` is the flag its last write carried (its task is `requeue_on_interrupt`); `previous_owner` is
    the instance that ran it.
    """

    record: TaskRecord
    requeue: bool
    previous_owner: str


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """One terminal record as `summary()` reports it: `ended` is its end_time in Unix seconds, `duration`
    the seconds from its start to its end (None when it never started)."""

    func_name: str
    status: TaskStatus
    ended: float
    duration: float | None


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What the metrics are computed from: `counts[func_name][status]` over every stored record (only the
    statuses present), and the `recent` terminal records that ended last, newest end first."""

    counts: dict[str, dict[TaskStatus, int]]
    recent: list[FinishedRun]


@runtime_checkable
class SummarizingStore(Protocol):
    """The optional aggregate query: a store that has it gives `/tasks/metrics` and the dashboard their
    history-wide per-function counts, durations, throughput and timeline.

    Optional so a store written against an earlier `TaskStore` keeps working: without it the status counts
    come from `counts()` and the rest covers this process only (and says so).
    """

    async def summary(self, *, recent: int) -> StoreSummary:
        """Record counts per function and status, and the `recent` (>= 1, else ValueError) terminal
        records with the latest end_time, newest first, ties in any order.

        Served by aggregates and an index on end_time, never by loading every record.
        Redis: per-function counter hashes kept by the write pipeline, and a ZREVRANGE on the end_time index.
        """
        ...


@runtime_checkable
class KeyFeedStore(Protocol):
    """The optional key feed: a store that has it lets `add_task` answer, without a round trip, with the id
    of a task that holds the key on *another* instance.

    Without it, such a duplicate is caught when it would start (the atomic claim) and ends CANCELLED.
    """

    def key_changes(
        self, *, subscribed: Callable[[], None] = lambda: None
    ) -> AsyncIterator[tuple[str, str | None]]:
        """Yield `(key, holder id)` whenever any instance claims a key, and `(key, None)` when the holder
        of a key fails, is cancelled or interrupted, or is deleted (`delete`, `delete_before`), until
        cancelled. Calls `subscribed()` once the feed
        is live (the runtime serves once it is, so a key claimed after start-up is never missed). Raises
        when the feed is lost (the runtime subscribes again).

        Redis: pub/sub on `prefix:keys` (the claim and write scripts publish). SQLite: a poll of `PRAGMA
        data_version`, then the rows of the trigger-fed key log after the last one seen.
        """
        ...


@dataclass(frozen=True, slots=True)
class StoredChange:
    """A record as another instance wrote it (listing form: `args`/`kwargs` empty), and that instance."""

    record: TaskRecord
    instance: str


@runtime_checkable
class ChangeFeedStore(Protocol):
    """The optional change feed: a store that has it lets the dashboard's stream show, live, the tasks that
    *other* instances sharing the store run (their own changes reach an instance through its lifecycle).

    Without it, another instance's tasks appear in listings, lookups and metrics, not in the live stream.
    """

    def task_changes(
        self, instance_id: str, *, subscribed: Callable[[], None] = lambda: None
    ) -> AsyncIterator[list[StoredChange]]:
        """Yield, batch by batch, the records that instances other than `instance_id` write, in their
        stored state, until cancelled. Calls `subscribed()` once the feed is live; raises when it is lost
        (the runtime subscribes again). Changes made while no feed is open are not replayed.

        Redis: pub/sub on `prefix:feed` (the write script publishes each batch's owner and ids), then one
        pipelined HMGET per changed record. SQLite: a poll of `PRAGMA data_version`, then an indexed query.
        """
        ...


@runtime_checkable
class TaskStore(Protocol):
    """Durable task records shared by every instance that opens the same store.

    Implement this to write a custom store, then run `taskflow.testing.StoreContract` against it.
    """

    async def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent: opening an open store does nothing.

        Redis: no schema; check the server answers and load the Lua scripts (SCRIPT LOAD).
        """
        ...

    async def close(self) -> None:
        """Release connections. Idempotent; the store may be opened again afterwards."""
        ...

    async def write(
        self, records: Sequence[TaskRecord], *, owner: str, requeue_ids: frozenset[str] = frozenset()
    ) -> None:
        """Upsert every record in one transaction (group commit): all are stored or none is.

        The whole record is stored: args/kwargs as `taskflow._codec.encode_call` JSON (never repr, never
        pickle), `encrypted_payload` as opaque bytes, plus `owner` (the instance running it) and a
        `requeue` flag, True for the records whose ids are in `requeue_ids`. Args that cannot be encoded
        raise `TypeError` before anything is written.

        Redis: one Lua script that rewrites each hash and its index entries and counters.
        """
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """The full record, args included, or None. Unreadable stored args raise `PayloadError`.

        Redis: one HGETALL.
        """
        ...

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
        """Records matching every given filter, newest first by (created_at, task_id), `limit` at a time.

        `task_id_prefix` matches ids that start with it; `task_id_search` (the dashboard's id search) ids
        whose full form or short form (`taskflow._models.short_id`) starts with it. A store written before
        `task_id_search` existed still works: the search then falls back to `task_id_prefix`.

        `cursor` is a `Page.next_cursor` from an earlier call (format: `taskflow._table.encode_cursor`);
        anything else raises `InvalidCursor`; `limit` < 1 raises `ValueError`. Served by the store (an
        indexed query), never by loading everything. Listing records leave `args`/`kwargs` empty (they are
        not decoded, so one unreadable payload cannot break a listing): `get()` returns them.

        Redis: ZRANGE BYLEX REV on a (created_at, task_id) index (per status / func_name / tag), then
        one pipelined HMGET per record.
        """
        ...

    async def counts(self) -> dict[TaskStatus, int]:
        """Stored records per status, every status present (zero when none).

        Redis: one counter hash kept by the write pipeline, read with HGETALL.
        """
        ...

    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        """Atomically bind `key` to `task_id` (return None), unless another task holds it (return its id).

        A task holds its key while its stored status is not FAILED, CANCELLED or INTERRUPTED; a holder
        whose record is not written yet (claimed, write still queued) holds it too. Re-claiming a key for
        the task that holds it returns None.

        Redis: a Lua script (GET key -> HGET holder status -> SET key), atomic on the server.
        """
        ...

    async def held_keys(self, *, limit: int) -> dict[str, str]:
        """Idempotency keys held by SUCCESS tasks (a final state), newest first, at most `limit`.

        The runtime preloads them at startup, so a key used before a restart still returns the original
        task id from `add_task` without a round trip to the store.

        Redis: a sorted set of SUCCESS holders by creation time, kept by the write and claim scripts.
        """
        ...

    async def heartbeat(self, instance_id: str, *, ttl: float) -> None:
        """Mark the instance alive until now + `ttl` seconds (wall clock). `ttl` must be finite and >= 0.

        Redis: SET instance-key 1 PX ttl (expiry done by the server).
        """
        ...

    async def forget_instance(self, instance_id: str) -> None:
        """Drop the instance's heartbeat (clean shutdown): its remaining live records become claimable.

        Redis: DEL instance-key.
        """
        ...

    async def claim_orphans(self, instance_id: str) -> list[RecoveredTask]:
        """Atomically re-own every PENDING/RUNNING record whose owner has no live heartbeat.

        Records owned by `instance_id` itself are never taken. Each orphan goes to exactly one caller, even
        with many processes claiming at once. A record whose stored args cannot be decoded comes back with
        empty args, `requeue=False` and a `status_reason` saying why (it can only be marked interrupted).

        Redis: a Lua script over the per-owner live-record sets that checks each owner's heartbeat key and
        moves a dead owner's records to the caller, so no two callers see the same record.
        """
        ...

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete terminal records whose end_time is before `cutoff`; returns how many.

        Idempotency keys held by deleted records are released (on the key feed too, when the store has
        one). Redis: a Lua script over the end_time index.
        """
        ...

    async def delete(self, task_ids: Sequence[str]) -> int:
        """Delete these records if they are terminal (live ones are never deleted); returns how many.
        Their keys are released as by `delete_before`.

        Redis: a Lua script that checks each status before DEL, so a record that just turned live stays.
        """
        ...
