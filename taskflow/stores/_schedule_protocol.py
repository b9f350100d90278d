"""The optional store capability of schedules (`ScheduleStore`): the last claimed slot of each periodic
schedule, its pause flag, the one-off runs waiting for their time, and the *run tickets* that make a
claimed run survive the instance that claimed it.

Exactly once per slot: a slot is claimed by a compare-and-set of the schedule's stored last slot
(`claim_slot`), never by a lock with a time to live. The claim writes, in the same transaction, a ticket
(run id, owner): until the run's task record is committed (then `release_run` drops the ticket), an
instance whose heartbeat expires leaves the ticket behind, and a survivor takes it over (`adopt_runs`),
so a claimed slot is never lost silently. After the release the task record itself is durable, and the
store's adoption of a lost instance's tasks applies to it like to any other task.

Optional like `AuditStore`: a store without it still runs schedules, but each instance then keeps its own
schedule state (one process only: the docs say so). `MemoryStore`, `SqliteStore` and `RedisStore`
implement it; the contract suite (`taskflow.testing.StoreContract`) pins the behaviour.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["AdoptedRun", "ClaimOutcome", "OneOffEntry", "ScheduleState", "ScheduleStore"]


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store knows about one periodic schedule (defaults when it never ran).

    `last_slot` is the latest slot accounted for (run or skipped), an aware UTC time; `last_run_id` the
    task id of the latest run (a slot's or a run-now's); `skipped` counts the slots that passed without a
    run (paused, overlapping the previous run, or missed while no instance ran and `catch_up="skip"`).
    """

    name: str
    last_slot: datetime | None = None
    last_run_id: str | None = None
    paused: bool = False
    skipped: int = 0


class ClaimOutcome(str, enum.Enum):  # noqa: UP042  (a str for JSON, as TaskStatus)
    """The answer of `claim_slot` / `claim_extra`."""

    CLAIMED = "claimed"  # the caller runs it: a ticket is held until `release_run`
    LOST = "lost"  # the stored last slot was not the one expected: another instance moved first
    SKIPPED = "skipped"  # the slot is consumed without a run (paused, overlap, or a missed slot skipped)
    BUSY = "busy"  # (run now) refused: the previous run is live and the schedule never overlaps


@dataclass(frozen=True, slots=True)
class OneOffEntry:
    """A one-off run waiting for `fire_at` (aware UTC), stored until its run's record is committed.

    `call` is the `taskflow._codec.encode_call` JSON of its arguments (`""` when they are encrypted in
    `encrypted_payload`); `run_id` is None until an instance claims it (then the task id of its run).
    `queue` and `priority` are the run's own (`schedule_once(..., queue=, priority=)`); None: its function's.
    """

    run_key: str
    func_name: str
    fire_at: datetime
    call: str
    encrypted_payload: bytes | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    run_id: str | None = None
    queue: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class AdoptedRun:
    """A run ticket taken over from an instance whose heartbeat expired before its run's record was
    committed: a periodic slot (`schedule`, `slot`) or a one-off (`once`, claimed by `run_id`)."""

    run_id: str
    previous_owner: str
    schedule: str | None = None
    slot: datetime | None = None
    once: OneOffEntry | None = None


@runtime_checkable
class ScheduleStore(Protocol):
    """Schedule state shared by every instance that opens the same store (see the module docstring).

    A run is *live* while its task record is PENDING or RUNNING in the store, or, before any record of it
    is stored, while its ticket exists.
    """

    async def schedule_states(self, names: Sequence[str]) -> dict[str, ScheduleState]:
        """The state of each named schedule (a default `ScheduleState` for one never stored).

        Redis: one pipelined HGETALL per schedule.
        """
        ...

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
        """Atomically move the schedule's last slot from `expected` to `slot` (> `expected`).

        LOST when the stored last slot is not `expected` (nothing changes). Otherwise the slot is
        consumed and: SKIPPED (`skipped` += `also_skipped` + 1) when `run_id` is None, the schedule is
        paused, or `exclusive` and its last run is live; else CLAIMED: `last_run_id` = `run_id`, a ticket
        (`run_id`, `owner`) is written, and `skipped` += `also_skipped` (slots before `slot` that passed).

        Redis: one Lua script (HGET last slot, HGET the last run's status, HSET, the ticket's HSET).
        """
        ...

    async def claim_extra(self, name: str, *, run_id: str, owner: str, exclusive: bool) -> ClaimOutcome:
        """An extra run (run now), not a slot: BUSY when `exclusive` and the last run is live, else
        CLAIMED (`last_run_id` = `run_id`, a ticket written); the last slot is unchanged."""
        ...

    async def set_paused(self, name: str, paused: bool) -> None:
        """Pause or resume the schedule for every instance (a paused schedule's slots are SKIPPED)."""
        ...

    async def release_run(self, run_id: str) -> None:
        """The run's record is committed: drop its ticket (and its one-off entry, if it is one's)."""
        ...

    async def adopt_runs(self, instance_id: str) -> list[AdoptedRun]:
        """Atomically re-own the tickets whose owner (not `instance_id`) has no live heartbeat; each goes to
        exactly one caller. The caller runs each whose record is not in the store, then releases it.

        Redis: a Lua script over the ticket set that checks each owner's heartbeat key.
        """
        ...

    async def put_once(self, entry: OneOffEntry) -> bool:
        """Store a one-off (unclaimed), replacing an unclaimed one with the same run key; False, and nothing
        changes, when the run key is already claimed (its run is starting)."""
        ...

    async def cancel_once(self, run_key: str) -> bool:
        """Delete the unclaimed one-off `run_key`; False when there is none (or it is already claimed)."""
        ...

    async def list_once(self, *, limit: int, before: datetime | None = None) -> list[OneOffEntry]:
        """Unclaimed one-offs by `fire_at` (then run key), due before `before` when given, at most `limit`
        (>= 1, else ValueError).

        Redis: ZRANGEBYSCORE on a fire-time index, then one pipelined HGETALL per entry.
        """
        ...

    async def claim_once(self, run_key: str, *, run_id: str, owner: str) -> OneOffEntry | None:
        """Atomically claim the unclaimed one-off `run_key` for the run `run_id` (a ticket is written);
        None when there is none or another instance claimed it first."""
        ...
