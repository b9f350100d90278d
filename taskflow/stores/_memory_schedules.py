"""`MemorySchedules`: the `ScheduleStore` operations in process memory, the reference implementation.

`MemoryStore` keeps its schedule state here (its records say whether a run is live, its heartbeats whether
an owner is), and the runtime uses one on its own when it has no store, or a store without
`ScheduleStore` (then the live table says whether a run is live, and nobody else can own a ticket). Each
method runs without an await between its reads and writes, so on one event loop it is atomic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from anyio.lowlevel import checkpoint

from .._models import TaskStatus
from ._common import check_limit
from ._schedule_protocol import AdoptedRun, ClaimOutcome, OneOffEntry, ScheduleState

__all__ = ["MemorySchedules"]

_LIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})
StatusOf = Callable[[str], TaskStatus | None]
"""The stored status of a task id, None when no record of it is stored."""


@dataclass(slots=True)
class _Ticket:
    owner: str
    schedule: str | None
    slot: datetime | None
    run_key: str | None


class MemorySchedules:
    """A `ScheduleStore` in memory; `status_of` and `alive` answer for the records and heartbeats."""

    def __init__(self, status_of: StatusOf, alive: Callable[[str], bool]) -> None:
        self._status_of = status_of
        self._alive = alive
        self._states: dict[str, ScheduleState] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._once: dict[str, OneOffEntry] = {}

    def __repr__(self) -> str:
        return f"MemorySchedules(schedules={len(self._states)}, one_offs={len(self._once)})"

    def _state(self, name: str) -> ScheduleState:
        return self._states.get(name) or ScheduleState(name)

    def _live(self, run_id: str | None) -> bool:
        if run_id is None:
            return False
        status = self._status_of(run_id)
        return status in _LIVE if status is not None else run_id in self._tickets

    async def schedule_states(self, names: Sequence[str]) -> dict[str, ScheduleState]:
        await checkpoint()
        return {name: self._state(name) for name in names}

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
        await checkpoint()
        state = self._state(name)
        if state.last_slot != expected or (expected is not None and slot <= expected):
            return ClaimOutcome.LOST
        if run_id is None or state.paused or (exclusive and self._live(state.last_run_id)):
            skipped = state.skipped + also_skipped + 1
            self._states[name] = dataclasses.replace(state, last_slot=slot, skipped=skipped)
            return ClaimOutcome.SKIPPED
        self._states[name] = dataclasses.replace(
            state, last_slot=slot, last_run_id=run_id, skipped=state.skipped + also_skipped
        )
        self._tickets[run_id] = _Ticket(owner, name, slot, None)
        return ClaimOutcome.CLAIMED

    async def claim_extra(self, name: str, *, run_id: str, owner: str, exclusive: bool) -> ClaimOutcome:
        await checkpoint()
        state = self._state(name)
        if exclusive and self._live(state.last_run_id):
            return ClaimOutcome.BUSY
        self._states[name] = dataclasses.replace(state, last_run_id=run_id)
        self._tickets[run_id] = _Ticket(owner, name, None, None)
        return ClaimOutcome.CLAIMED

    async def set_paused(self, name: str, paused: bool) -> None:
        await checkpoint()
        self._states[name] = dataclasses.replace(self._state(name), paused=bool(paused))

    async def release_run(self, run_id: str) -> None:
        await checkpoint()
        ticket = self._tickets.pop(run_id, None)
        if ticket is not None and ticket.run_key is not None:
            entry = self._once.get(ticket.run_key)
            if entry is not None and entry.run_id == run_id:
                del self._once[ticket.run_key]

    async def adopt_runs(self, instance_id: str) -> list[AdoptedRun]:
        await checkpoint()
        adopted = []
        for run_id, ticket in self._tickets.items():
            if ticket.owner == instance_id or self._alive(ticket.owner):
                continue
            previous, ticket.owner = ticket.owner, instance_id
            once = self._once.get(ticket.run_key) if ticket.run_key is not None else None
            adopted.append(AdoptedRun(run_id, previous, ticket.schedule, ticket.slot, once))
        return adopted

    async def put_once(self, entry: OneOffEntry) -> bool:
        await checkpoint()
        existing = self._once.get(entry.run_key)
        if existing is not None and existing.run_id is not None:
            return False
        self._once[entry.run_key] = dataclasses.replace(entry, run_id=None, tags=dict(entry.tags))
        return True

    async def cancel_once(self, run_key: str) -> bool:
        await checkpoint()
        entry = self._once.get(run_key)
        if entry is None or entry.run_id is not None:
            return False
        del self._once[run_key]
        return True

    async def list_once(self, *, limit: int, before: datetime | None = None) -> list[OneOffEntry]:
        check_limit(limit)
        await checkpoint()
        waiting = [
            e for e in self._once.values() if e.run_id is None and (before is None or e.fire_at < before)
        ]
        waiting.sort(key=lambda e: (e.fire_at, e.run_key))
        return [dataclasses.replace(e, tags=dict(e.tags)) for e in waiting[:limit]]

    async def claim_once(self, run_key: str, *, run_id: str, owner: str) -> OneOffEntry | None:
        await checkpoint()
        entry = self._once.get(run_key)
        if entry is None or entry.run_id is not None:
            return None
        claimed = self._once[run_key] = dataclasses.replace(entry, run_id=run_id)
        self._tickets[run_id] = _Ticket(owner, None, None, run_key)
        return dataclasses.replace(claimed, tags=dict(claimed.tags))


class MemoryScheduleMethods:
    """The `ScheduleStore` methods of `MemoryStore` (which supplies `_schedules` and `_check_open`)."""

    _schedules: MemorySchedules

    def _check_open(self) -> None:  # pragma: no cover - MemoryStore's
        raise NotImplementedError

    async def schedule_states(self, names: Sequence[str]) -> dict[str, ScheduleState]:
        """The state of each named schedule."""
        self._check_open()
        return await self._schedules.schedule_states(names)

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
        """Compare-and-set the schedule's last slot (see `ScheduleStore.claim_slot`)."""
        self._check_open()
        return await self._schedules.claim_slot(
            name, slot=slot, expected=expected, run_id=run_id, owner=owner, exclusive=exclusive,
            also_skipped=also_skipped,
        )  # fmt: skip

    async def claim_extra(self, name: str, *, run_id: str, owner: str, exclusive: bool) -> ClaimOutcome:
        """An extra run of the schedule (run now)."""
        self._check_open()
        return await self._schedules.claim_extra(name, run_id=run_id, owner=owner, exclusive=exclusive)

    async def set_paused(self, name: str, paused: bool) -> None:
        """Pause or resume the schedule."""
        self._check_open()
        await self._schedules.set_paused(name, paused)

    async def release_run(self, run_id: str) -> None:
        """Drop the run's ticket (and its one-off)."""
        self._check_open()
        await self._schedules.release_run(run_id)

    async def adopt_runs(self, instance_id: str) -> list[AdoptedRun]:
        """Take over the tickets of lost instances."""
        self._check_open()
        return await self._schedules.adopt_runs(instance_id)

    async def put_once(self, entry: OneOffEntry) -> bool:
        """Store a one-off."""
        self._check_open()
        return await self._schedules.put_once(entry)

    async def cancel_once(self, run_key: str) -> bool:
        """Delete an unclaimed one-off."""
        self._check_open()
        return await self._schedules.cancel_once(run_key)

    async def list_once(self, *, limit: int, before: datetime | None = None) -> list[OneOffEntry]:
        """Unclaimed one-offs by fire time."""
        self._check_open()
        return await self._schedules.list_once(limit=limit, before=before)

    async def claim_once(self, run_key: str, *, run_id: str, owner: str) -> OneOffEntry | None:
        """Claim a one-off for its run."""
        self._check_open()
        return await self._schedules.claim_once(run_key, run_id=run_id, owner=owner)
