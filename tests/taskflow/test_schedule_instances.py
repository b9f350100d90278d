"""Schedules across instances: two task managers on one SQLite file, on one Redis prefix, and on one shared
MemoryStore, driven by one `ManualScheduleClock`. Every slot runs exactly once, none is skipped; catch-up
after downtime; no overlap; a restart keeps the last slot; a one-off fires once; a claim left by a lost
instance is run by a survivor."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from taskflow import TaskManager
from taskflow.stores import MemoryStore, RedisStore, ScheduleStore, SqliteStore, TaskStore
from taskflow.testing import ManualScheduleClock, run_until_idle
from tests.redis_service import REDIS_URL, redis_prefix

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)  # between slots: nothing is due at start
SLOTS = 12


@pytest.fixture(params=["memory", "sqlite", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], TaskStore]]:
    """A factory of handles onto one shared store (memory: one object; SQLite: one file; Redis: a prefix)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "tasks.db")
    else:
        with redis_prefix() as prefix:
            yield lambda: RedisStore(REDIS_URL, prefix=prefix)


def manager(store: TaskStore, clock: ManualScheduleClock, **options: object) -> TaskManager:
    return TaskManager(snapshot_backend=store, schedule_clock=clock, heartbeat_interval=0.2,
                       heartbeat_ttl=0.6,
                       **options)  # type: ignore[arg-type]  # fmt: skip


async def settle(managers: list[TaskManager], done: Callable[[], bool], store: TaskStore) -> None:
    """Wait (bounded) until `done()`, every manager is idle and everything is committed to the store."""
    with anyio.fail_after(15):
        while not done():
            await anyio.sleep(0.01)
        for tm in managers:
            await run_until_idle(tm)
            persistence = tm.actions.persistence
            if persistence is not None:
                await persistence.sync()
    assert isinstance(store, ScheduleStore)


async def sleeping(clock: ManualScheduleClock, count: int) -> None:
    """Wait (bounded) until `count` coroutines sleep on the clock: every scheduler is waiting for a slot."""
    with anyio.fail_after(15):
        while clock.sleepers < count:
            await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*managers: TaskManager) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for tm in managers:
            await stack.enter_async_context(tm.running())
        yield


def declare(tm: TaskManager, runs: list[tuple[str, datetime]], label: str, **options: object) -> None:
    clock = tm.schedule_clock

    @tm.schedule(every=60, **options)  # type: ignore[arg-type]
    async def tick() -> None:
        runs.append((label, clock.now()))


async def test_two_instances_run_every_slot_exactly_once(
    anyio_backend: str, stores: Callable[[], TaskStore]
) -> None:
    """Over many slots, both instances awake: each slot runs once, on one of them, none skipped."""
    clock = ManualScheduleClock(T0)
    runs: list[tuple[str, datetime]] = []
    a, b = manager(stores(), clock), manager(stores(), clock)
    declare(a, runs, "a")
    declare(b, runs, "b")
    async with running(a, b):
        for n in range(1, SLOTS + 1):
            await sleeping(clock, 4)  # each instance: its schedule's loop and its one-off loop
            clock.advance(60)
            await settle([a, b], lambda n=n: len(runs) >= n, a.actions.persistence.store)  # type: ignore[union-attr]
        await anyio.sleep(0.05)  # a second run of the last slot would show up now
        states = await a.schedules()
    slots = [when for _, when in runs]
    expected = [T0.replace(microsecond=0) + timedelta(minutes=n) for n in range(1, SLOTS + 1)]
    assert sorted(s.replace(microsecond=0) for s in slots) == expected
    assert (states[0].skipped, states[0].last_slot) == (0, expected[-1])


async def test_missed_slots_are_skipped_by_default(
    anyio_backend: str, stores: Callable[[], TaskStore]
) -> None:
    """The app is down for five slots: at restart none of them runs (counted skipped); the next slot does.
    (misfire_grace=10: the 12:06 slot, 30 s old at restart, is late too.)"""
    clock = ManualScheduleClock(T0)
    runs: list[tuple[str, datetime]] = []
    first = manager(stores(), clock)
    declare(first, runs, "first", misfire_grace=10)
    async with running(first):
        await sleeping(clock, 2)
        clock.advance(60)
        await settle([first], lambda: len(runs) == 1, stores())
    clock.advance(timedelta(minutes=5, seconds=30))  # down: 12:02 .. 12:06 pass with nothing running
    second = manager(stores(), clock)
    declare(second, runs, "second", misfire_grace=10)
    async with running(second):
        await sleeping(clock, 2)
        assert len(runs) == 1  # nothing caught up
        (info,) = await second.schedules()
        assert info.skipped == 5 and info.last_slot == datetime(2024, 5, 1, 12, 6, tzinfo=UTC)
        clock.advance(30)  # 12:07:00.25: the next slot, on time
        await settle([second], lambda: len(runs) == 2, stores())
    assert runs[1][0] == "second"


async def test_catch_up_once_runs_once_after_downtime(
    anyio_backend: str, stores: Callable[[], TaskStore]
) -> None:
    """catch_up="once": the missed slots become one run at restart, tagged catch_up."""
    clock = ManualScheduleClock(T0)
    runs: list[tuple[str, datetime]] = []
    first = manager(stores(), clock)
    declare(first, runs, "first", catch_up="once", misfire_grace=10)
    async with running(first):
        await sleeping(clock, 2)
        clock.advance(60)
        await settle([first], lambda: len(runs) == 1, stores())
    clock.advance(timedelta(minutes=5, seconds=30))
    second = manager(stores(), clock)
    declare(second, runs, "second", catch_up="once", misfire_grace=10)
    async with running(second):
        await settle([second], lambda: len(runs) == 2, stores())
        await sleeping(clock, 2)
        page = await second.query_history(tag=("trigger", "catch_up"))
    assert len(runs) == 2 and runs[1][0] == "second"
    assert [r.tags["slot"] for r in page.records] == ["2024-05-01T12:06:00+00:00"]
    assert page.records[0].tags["source"] == "scheduled"


async def test_a_slot_never_overlaps_a_live_run(anyio_backend: str, stores: Callable[[], TaskStore]) -> None:
    """While a run is still going, the next slot is skipped and counted; with overlap=True it would run."""
    clock = ManualScheduleClock(T0)
    release = anyio.Event()
    started: list[datetime] = []
    tm = manager(stores(), clock)

    @tm.schedule(every=60)
    async def slow() -> None:
        started.append(clock.now())
        await release.wait()

    async with running(tm):
        await sleeping(clock, 2)
        clock.advance(60)
        with anyio.fail_after(10):
            while not started:
                await anyio.sleep(0.01)
        clock.advance(60)  # the first run is still live
        with anyio.fail_after(10):
            while (await tm.schedules())[0].skipped < 1:
                await anyio.sleep(0.01)
        release.set()
        await run_until_idle(tm)
    assert len(started) == 1


async def test_a_restart_keeps_the_last_slot(anyio_backend: str, stores: Callable[[], TaskStore]) -> None:
    """Restarting within a slot (run_on_startup=True) does not run the slot already claimed before."""
    clock = ManualScheduleClock(T0)
    runs: list[tuple[str, datetime]] = []
    first = manager(stores(), clock)
    declare(first, runs, "first", run_on_startup=True)
    async with running(first):
        await settle([first], lambda: len(runs) == 1, stores())  # the slot in progress (12:00) at startup
    second = manager(stores(), clock)
    declare(second, runs, "second", run_on_startup=True)
    async with running(second):
        await sleeping(clock, 2)
        (info,) = await second.schedules()
        assert info.last_slot == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert [label for label, _ in runs] == ["first"]


async def test_a_one_off_fires_once_across_instances_and_cancel_works(
    anyio_backend: str, stores: Callable[[], TaskStore]
) -> None:
    """A one-off added on one instance runs once (on either); a cancelled one never runs."""
    clock = ManualScheduleClock(T0)
    calls: list[tuple[str, int]] = []
    managers = [manager(stores(), clock), manager(stores(), clock)]
    for label, tm in zip("ab", managers, strict=True):

        @tm.task(name="remind")
        async def remind(n: int, label: str = label) -> None:
            calls.append((label, n))

    async with running(*managers):
        a, b = managers
        key = await a.schedule_once(a.registry.get("remind").func, 1, delay=30)
        await b.schedule_once(b.registry.get("remind").func, 2, at=T0 + timedelta(seconds=40),
                                          run_key="cancel-me")  # fmt: skip
        listed = await b.list_scheduled()
        assert [s.run_key for s in listed] == [key, "cancel-me"]
        assert await a.cancel_scheduled("cancel-me") is True
        assert await a.cancel_scheduled("cancel-me") is False
        for tm in managers:
            tm.scheduler.wake()  # each looks at the store again (maintenance does it every heartbeat)
        clock.advance(60)
        await settle(managers, lambda: len(calls) >= 1, stores())
        await anyio.sleep(0.1)
        for tm in managers:
            tm.scheduler.wake()
        await anyio.sleep(0.1)
        assert await a.list_scheduled() == []
    assert [n for _, n in calls] == [1]


async def test_a_claim_left_by_a_lost_instance_is_run_by_a_survivor(
    anyio_backend: str, stores: Callable[[], TaskStore]
) -> None:
    """An instance claimed a slot, then died before its run's record was stored: a survivor runs it."""
    clock = ManualScheduleClock(T0)
    runs: list[tuple[str, datetime]] = []
    store = stores()
    await store.open()
    assert isinstance(store, ScheduleStore)
    slot = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    outcome = await store.claim_slot("tick", slot=slot, expected=None, run_id="lost-run", owner="dead",
                                     exclusive=True)  # fmt: skip
    assert outcome == "claimed"
    await store.close()
    survivor = manager(stores(), clock)
    declare(survivor, runs, "survivor")
    async with running(survivor):
        await settle([survivor], lambda: len(runs) == 1, stores())
        record = await survivor.find("lost-run")
    assert record.status.value == "success"
    assert record.tags["trigger"] == "adopted" and record.tags["slot"] == slot.isoformat()
