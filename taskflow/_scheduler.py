"""The scheduler: a service actor (`taskflow.scheduler`) that fires periodic slots and one-off runs.

One coroutine per periodic schedule sleeps on the `ScheduleClock` until the schedule's next slot (a
cancellable sleep, never a poll), then claims the slot in the schedule store with a compare-and-set of the
last slot: on every instance sharing the store, exactly one claim of a slot succeeds. One more coroutine
fires the one-off runs as they come due; with a shared store a maintenance coroutine, every
`heartbeat_interval`, adopts the run tickets of lost instances and looks for one-offs other instances added.

When a tick finds the schedule behind (`last_slot` older than the current slot):

- the current slot is on time (at most `misfire_grace` seconds late): it runs; slots before it that passed
  with no instance running are counted skipped (`catch_up="skip"`) or folded into this run (`"once"`);
- it is late (the app was down): `"skip"` consumes the slots without a run (counted); `"once"` runs once;
- `run_on_startup=True`: the slot in progress when the schedule is armed runs at once (unless any instance
  already claimed it), instead of waiting for the next.

Without `overlap=True` a slot that comes while the schedule's previous run is live is skipped (counted).
Without a `ScheduleStore` the state is kept in this process (`MemorySchedules`): one instance only.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio

from ._exceptions import ConfigurationError, InvalidTaskState, ScheduleNotFound, StoreUnavailable
from ._models import TaskRecord, TaskStatus, new_task_id
from ._schedule_runs import RUN_KEY_TAG, SCHEDULE_TAG, SLOT_TAG, TRIGGER_TAG, RunStarter
from ._schedules import ScheduleClock, ScheduleDefinition
from ._triggers import count_between
from .stores import ClaimOutcome, MemorySchedules, OneOffEntry, ScheduleState, ScheduleStore, backoff_delay

if TYPE_CHECKING:
    from ._persistence import Persistence
    from ._table import TaskTable

_log = logging.getLogger("taskflow.schedules")
ACTOR_NAME = "taskflow.scheduler"
_CAS_ATTEMPTS = 8  # a LOST claim means another instance moved first: look again, a bounded number of times
_ONE_OFF_BATCH = 100
_IDLE = timedelta(hours=1)  # with nothing due, the one-off loop still looks again this often
_START_BOUND = 10.0  # seconds a claimed run's start is shielded from shutdown (its commit is bounded too)


class Scheduler:
    """Declared schedules, and their firing while the actor runs (see the module docstring)."""

    def __init__(
        self,
        *,
        starter: RunStarter,
        table: TaskTable,
        persistence: Persistence | None,
        clock: ScheduleClock,
        maintenance_interval: float,
    ) -> None:
        self.starter = starter
        self.persistence = persistence
        self.clock = clock
        self.maintenance_interval = maintenance_interval
        self.definitions: dict[str, ScheduleDefinition] = {}
        self._local = MemorySchedules(lambda task_id: _status(table, task_id), lambda owner: True)
        self._group: anyio.abc.TaskGroup | None = None
        self._sleep: anyio.CancelScope | None = None  # the one-off loop's sleep, cancelled to wake it
        self._woken = False
        self.fired = 0
        self.skipped = 0

    # -- declaring ---------------------------------------------------------------------------------------

    def declare(self, definition: ScheduleDefinition) -> None:
        """Add a periodic schedule; armed at once when the scheduler runs (else at its start)."""
        if definition.name in self.definitions:
            raise ConfigurationError(f"a schedule named {definition.name!r} is already declared")
        self.definitions[definition.name] = definition
        if self._group is not None:
            self._group.start_soon(self._loop, definition, name=f"schedule:{definition.name}")

    @property
    def running(self) -> bool:
        """True while the scheduler actor runs."""
        return self._group is not None

    def backend(self) -> tuple[ScheduleStore, str]:
        """The schedule store and this instance's owner id: the task store when it is a `ScheduleStore`,
        else this process's own state. StoreUnavailable while a store is configured but not open."""
        persistence = self.persistence
        if persistence is None:
            return self._local, "local"
        if not persistence.active:
            raise StoreUnavailable(
                "schedules need the task store: it is open only while the task manager runs"
            )
        store = persistence.store
        if isinstance(store, ScheduleStore):
            return store, persistence.instance_id
        return self._local, persistence.instance_id

    def _shared(self) -> bool:
        persistence = self.persistence
        return persistence is not None and isinstance(persistence.store, ScheduleStore)

    # -- the actor ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The actor's body: every schedule's loop, the one-off loop, maintenance; until cancelled."""
        async with anyio.create_task_group() as tg:
            self._group = tg
            try:
                for definition in list(self.definitions.values()):
                    tg.start_soon(self._loop, definition, name=f"schedule:{definition.name}")
                tg.start_soon(self._one_offs, name="schedule:one-offs")
                if self._shared():
                    tg.start_soon(self._maintain, name="schedule:maintenance")
                await anyio.sleep_forever()
            finally:
                self._group = None

    async def _loop(self, definition: ScheduleDefinition) -> None:
        startup, failures = True, 0
        while True:
            try:
                await self.tick(definition, startup=startup)
            except Exception:
                failures += 1
                _log.exception("schedule %s: tick failed; trying again", definition.name)
                await anyio.sleep(backoff_delay(failures, base=0.1, cap=max(1.0, self.maintenance_interval)))
                continue
            startup, failures = False, 0
            await self.clock.sleep_until(definition.trigger.next_after(self.clock.now()))

    async def tick(self, definition: ScheduleDefinition, *, startup: bool = False) -> ClaimOutcome | None:
        """Claim and run the current slot if nobody has (see the module docstring); what happened, or None
        when there was nothing to claim."""
        backend, owner = self.backend()
        await self._sync()
        trigger = definition.trigger
        for _ in range(_CAS_ATTEMPTS):
            now = self.clock.now()
            current = trigger.latest(now)
            last = (await backend.schedule_states([definition.name]))[definition.name].last_slot
            if last is not None and current <= last:
                return None  # accounted for, by this instance or another
            on_startup = startup and definition.run_on_startup
            if last is None and startup and not on_startup:
                return None  # a new schedule starts with its next slot
            late = (now - current).total_seconds() > definition.misfire_grace
            run = on_startup or not late or (definition.catch_up == "once" and last is not None)
            how = "startup" if on_startup else "catch_up" if late else "slot"
            missed = count_between(trigger, last, current) if last is not None else 0
            also_skipped = 0 if run and definition.catch_up == "once" else missed
            run_id = new_task_id() if run else None
            outcome = await backend.claim_slot(
                definition.name, slot=current, expected=last, run_id=run_id, owner=owner,
                exclusive=not definition.overlap, also_skipped=also_skipped,
            )  # fmt: skip
            if outcome is ClaimOutcome.LOST:
                continue
            if outcome is ClaimOutcome.CLAIMED and run_id is not None:
                tags = {SCHEDULE_TAG: definition.name, TRIGGER_TAG: how, SLOT_TAG: current.isoformat()}
                with anyio.move_on_after(_START_BOUND, shield=True):
                    await self.starter.start(backend, run_id, definition.name, tags)
                self.fired += 1
            else:
                self.skipped += also_skipped + 1
                _log.info("schedule %s: slot %s skipped (%s)", definition.name, current.isoformat(), how)
            return outcome
        _log.warning("schedule %s: the slot kept moving under this instance; next slot then", definition.name)
        return ClaimOutcome.LOST

    async def _sync(self) -> None:
        # This instance's finished runs are committed before the store judges whether a run is live.
        if self.persistence is not None and self.persistence.active:
            await self.persistence.sync()

    async def _one_offs(self) -> None:
        failures = 0
        while True:
            try:
                wake_at = await self.fire_due()
                failures = 0
            except Exception:
                failures += 1
                _log.exception("one-off runs: firing failed; trying again")
                wake_at = self.clock.now() + timedelta(seconds=backoff_delay(failures, base=0.1, cap=5.0))
            if self._woken:
                self._woken = False
                continue
            with anyio.CancelScope() as scope:
                self._sleep = scope
                await self.clock.sleep_until(wake_at)
            self._sleep, self._woken = None, False

    def wake(self) -> None:
        """Look at the one-offs again now (one was added, or another instance may have added some)."""
        self._woken = True
        if self._sleep is not None:
            self._sleep.cancel()

    async def fire_due(self) -> datetime:
        """Claim and start every one-off that is due; when the next one is."""
        backend, owner = self.backend()
        while True:
            now = self.clock.now()
            waiting = await backend.list_once(limit=_ONE_OFF_BATCH)
            due = [entry for entry in waiting if entry.fire_at <= now]
            for entry in due:
                run_id = new_task_id()
                claimed = await backend.claim_once(entry.run_key, run_id=run_id, owner=owner)
                if claimed is not None:  # else another instance fired it, or it was cancelled
                    tags = {TRIGGER_TAG: "once", RUN_KEY_TAG: claimed.run_key, **claimed.tags}
                    with anyio.move_on_after(_START_BOUND, shield=True):
                        await self.starter.start(backend, run_id, claimed.func_name, tags, claimed)
                    self.fired += 1
            if len(due) < _ONE_OFF_BATCH:
                later = [entry.fire_at for entry in waiting if entry.fire_at > now]
                return min(later, default=now + _IDLE)

    async def _maintain(self) -> None:
        while True:
            try:
                await self.adopt()
            except Exception:
                _log.exception("could not adopt the scheduled runs of lost instances; retrying later")
            self.wake()
            await anyio.sleep(self.maintenance_interval)

    async def adopt(self) -> int:
        """Start the runs that lost instances claimed but never committed; how many tickets were taken."""
        backend, owner = self.backend()
        adopted = await backend.adopt_runs(owner)
        for run in adopted:
            await self.starter.adopt(backend, run)
        return len(adopted)

    # -- acting on schedules (the public methods and the HTTP API) ---------------------------------------

    def definition(self, name: str) -> ScheduleDefinition:
        """The schedule named `name`; ScheduleNotFound otherwise."""
        try:
            return self.definitions[name]
        except KeyError:
            raise ScheduleNotFound(f"no schedule is named {name!r}") from None

    async def states(self) -> dict[str, ScheduleState]:
        """The stored state of every declared schedule."""
        backend, _ = self.backend()
        return await backend.schedule_states(sorted(self.definitions))

    def next_run(self, definition: ScheduleDefinition, state: ScheduleState) -> datetime:
        """When the schedule is next due (its next slot after now and after its last claimed one)."""
        now = self.clock.now()
        after = max(now, state.last_slot) if state.last_slot is not None else now
        return definition.trigger.next_after(after)

    async def set_paused(self, name: str, paused: bool) -> None:
        """Pause (its slots are skipped, on every instance sharing the store) or resume a schedule."""
        self.definition(name)
        backend, _ = self.backend()
        await backend.set_paused(name, paused)

    async def run_now(self, name: str) -> TaskRecord:
        """An extra run of the schedule, now (not a slot: the next slot still runs). InvalidTaskState while
        its previous run is live, unless the schedule allows overlap."""
        definition = self.definition(name)
        backend, owner = self.backend()
        await self._sync()
        run_id = new_task_id()
        outcome = await backend.claim_extra(
            name, run_id=run_id, owner=owner, exclusive=not definition.overlap
        )
        if outcome is ClaimOutcome.BUSY:
            raise InvalidTaskState(f"schedule {name!r} has a run in progress and does not overlap")
        tags = {SCHEDULE_TAG: name, TRIGGER_TAG: "run_now"}
        return await self.starter.start(backend, run_id, name, tags)

    async def put_once(self, entry: OneOffEntry) -> None:
        """Store a one-off run and wake the loop; InvalidTaskState when its run key is already firing."""
        backend, _ = self.backend()
        if not await backend.put_once(entry):
            raise InvalidTaskState(f"one-off run {entry.run_key!r} is already starting: it cannot change now")
        self.wake()

    async def cancel_once(self, run_key: str) -> bool:
        """Cancel a waiting one-off run; False when there is none (or it is already starting)."""
        backend, _ = self.backend()
        return await backend.cancel_once(run_key)

    async def list_once(self, *, limit: int = 1000) -> list[OneOffEntry]:
        """The waiting one-off runs, soonest first."""
        backend, _ = self.backend()
        return await backend.list_once(limit=limit)

    def statistics(self) -> dict[str, Any]:
        """Counters of this instance: runs fired and slots skipped."""
        return {"running": self.running, "fired": self.fired, "skipped": self.skipped}


def _status(table: TaskTable, task_id: str) -> TaskStatus | None:
    record = table.get(task_id)
    return record.status if record is not None else None
