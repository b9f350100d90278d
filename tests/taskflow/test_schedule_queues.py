"""Schedules meet queues and process tasks: a periodic slot and a one-off wait in their queue with their
priority like any task; a one-off refused by a full queue is REJECTED in history (store included), never lost
silently; unknown queues and unpicklable process arguments are refused before anything is stored; and
`@schedule(executor="process")` runs the slot in a worker process."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskflow import (
    ConfigurationError,
    QueueConfig,
    ScheduledOnce,
    TaskArgumentError,
    TaskManager,
    TaskStatus,
)
from taskflow.stores import SqliteStore
from taskflow.testing import ManualScheduleClock
from tests.helpers import wait_finished, wait_until
from tests.taskflow import process_tasks as pt
from tests.taskflow.test_queues import Gate, queue, submit

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)  # between slots: nothing is due at start
LIMIT = 90.0  # a process task's worker starts slowly on a busy machine


async def sleeping(clock: ManualScheduleClock, count: int) -> None:
    """Wait (bounded) until the scheduler's `count` loops sleep on the clock."""
    with anyio.fail_after(15):
        while clock.sleepers < count:
            await anyio.sleep(0.005)


def runs_of(tm: TaskManager, trigger: str) -> list[Any]:
    return [r for r in tm.query(tag=("trigger", trigger), limit=100).records]


def managed(clock: ManualScheduleClock, **queues: QueueConfig) -> TaskManager:
    return TaskManager(queues=queues, schedule_clock=clock, config=False)


async def test_a_periodic_slot_waits_in_its_queue_with_its_priority() -> None:
    """The slot's run of `@schedule(queue=, priority=)` waits behind the queue's running task (it does not
    bypass the queue) and then starts before a lower-priority task that was waiting first."""
    clock = ManualScheduleClock(T0)
    tm = managed(clock, q=QueueConfig(concurrency=1))
    gate = Gate()
    hold = tm.task(queue="q", name="hold")(gate.hold)
    note = tm.task(queue="q", name="note")(gate.note)

    @tm.schedule(every=60, name="report", queue="q", priority=5)
    async def report() -> None:
        gate.order.append("report")

    definition = tm.registry.get("report")
    assert (definition.queue, definition.priority) == ("q", 5)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.order == ["blocker"])
        low = await submit(tm, note, "low", priority=1)
        await sleeping(clock, 2)  # the schedule's loop and the one-off loop
        clock.advance(60)
        await wait_until(lambda: len(runs_of(tm, "slot")) == 1)
        (slot_run,) = runs_of(tm, "slot")
        assert slot_run.status is TaskStatus.PENDING and queue(tm, "q")["pending"] == 2
        assert gate.order == ["blocker"]  # held in the queue, not started beside the blocker
        gate.release.set()
        await wait_finished(tm, [blocker, low, slot_run.task_id])
    assert gate.order == ["blocker", "report", "low"]
    assert queue(tm, "q")["finished"] == 3


async def test_a_one_off_waits_in_the_queue_given_with_its_priority() -> None:
    """`schedule_once(..., queue=, priority=)` is listed with them and its run waits in that queue: it
    overtakes a lower-priority waiting task. The function's own queue applies when none is given."""
    clock = ManualScheduleClock(T0)
    tm = managed(clock, q=QueueConfig(concurrency=1), other=QueueConfig())
    gate = Gate()
    hold = tm.task(queue="q", name="hold")(gate.hold)
    note = tm.task(queue="other", name="note")(gate.note)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.order == ["blocker"])
        low = await submit(tm, note, "low", queue="q", priority=1)
        key = await tm.schedule_once(note, "once", delay=30, queue="q", priority=9, run_key="k")
        (listed,) = await tm.list_scheduled()
        assert isinstance(listed, ScheduledOnce)
        assert (listed.queue, listed.priority) == ("q", 9)
        assert listed.to_dict()["queue"] == "q" and listed.to_dict()["priority"] == 9
        await sleeping(clock, 1)
        clock.advance(30)
        await wait_until(lambda: len(runs_of(tm, "once")) == 1)
        (run,) = runs_of(tm, "once")
        assert run.tags["run_key"] == key and queue(tm, "q")["pending"] == 2
        assert gate.order == ["blocker"]
        gate.release.set()
        await wait_finished(tm, [blocker, low, run.task_id])
        assert gate.order == ["blocker", "once", "low"]
        await tm.schedule_once(note, "own queue", delay=0)  # no queue given: the function's ("other")
        await wait_until(lambda: queue(tm, "other")["finished"] == 1)
    assert gate.order[-1] == "own queue"


async def test_a_one_off_refused_by_its_full_queue_is_rejected_in_history(tmp_path: Path) -> None:
    """The queue is full when the one-off comes due: its run is REJECTED (never run), the one-off is
    consumed (not fired again, not lost: its record says why, in the store too) and the queue counts it."""
    clock = ManualScheduleClock(T0)
    path = tmp_path / "tasks.db"
    tm = TaskManager(
        queues={"q": QueueConfig(concurrency=1, max_size=1)}, schedule_clock=clock, config=False,
        snapshot_backend=SqliteStore(path),
    )  # fmt: skip
    gate = Gate()
    hold = tm.task(queue="q", name="hold")(gate.hold)
    note = tm.task(queue="q", name="note")(gate.note)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.order == ["blocker"])
        waiting = await submit(tm, note, "waiting")  # the queue's one waiting place is taken
        await tm.schedule_once(note, "refused", delay=10, run_key="late")
        await sleeping(clock, 1)
        clock.advance(10)
        await wait_until(lambda: len(runs_of(tm, "once")) == 1)
        (run,) = runs_of(tm, "once")
        assert run.status is TaskStatus.REJECTED
        assert run.status_reason is not None and "queue 'q' is full" in run.status_reason
        assert queue(tm, "q")["rejected"] == 1
        assert await tm.list_scheduled() == []  # consumed: it will not fire again
        gate.release.set()
        await wait_finished(tm, [blocker, waiting])
    assert "refused" not in gate.order
    again = TaskManager(snapshot_backend=SqliteStore(path), config=False)
    async with again.running():
        stored = await again.find(run.task_id)
    assert stored.status is TaskStatus.REJECTED and stored.tags["run_key"] == "late"


async def test_run_now_of_a_schedule_whose_queue_is_full_is_rejected() -> None:
    """Run now goes through the schedule's queue too: refused there, its run is REJECTED (id returned)."""
    clock = ManualScheduleClock(T0)
    tm = managed(clock, q=QueueConfig(concurrency=1, max_size=1))
    gate = Gate()
    hold = tm.task(queue="q", name="hold")(gate.hold)
    note = tm.task(queue="q", name="note")(gate.note)
    tm.schedule(every=3600, name="report", queue="q")(gate.note)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.order == ["blocker"])
        waiting = await submit(tm, note, "waiting")
        refused = await tm.run_schedule_now("report")
        assert tm.get(refused).status is TaskStatus.REJECTED
        gate.release.set()
        await wait_finished(tm, [blocker, waiting])
    assert gate.order == ["blocker", "waiting"]


async def test_unknown_queues_and_bad_priorities_are_refused_before_anything_is_stored() -> None:
    """`@schedule(queue=unknown)` is a ConfigurationError naming the schedule, and declares nothing;
    `schedule_once(queue=unknown)` a ValueError, with or without declared queues; a bad priority a
    TypeError; no one-off is stored by any of them."""
    clock = ManualScheduleClock(T0)
    tm = managed(clock, q=QueueConfig())

    async def job() -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"@schedule\('job'\).*no queue named 'nope'"):
        tm.schedule(every=60, queue="nope")(job)
    assert tm.registry.find("job") is None and "job" not in tm.scheduler.definitions
    with pytest.raises(ConfigurationError, match="queue must be a str"):
        tm.schedule(every=60, queue=3)(job)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="priority"):
        tm.schedule(every=60, queue="q", priority="high")(job)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no queue named 'nope'"):
        await tm.schedule_once(job, delay=5, queue="nope")
    with pytest.raises(TypeError, match="priority must be an int"):
        await tm.schedule_once(job, delay=5, queue="q", priority="high")  # type: ignore[arg-type]
    bare = TaskManager(schedule_clock=clock, config=False)
    with pytest.raises(ValueError, match="no queue is declared"):
        await bare.schedule_once(job, delay=5, queue="q")
    assert await tm.list_scheduled() == [] and await bare.list_scheduled() == []


async def test_a_process_one_off_checks_its_arguments_pickle_before_it_is_stored() -> None:
    """`schedule_once` of an `executor="process"` task raises TaskArgumentError naming the argument that
    does not pickle, and stores nothing; picklable arguments are stored as usual."""
    tm = TaskManager(schedule_clock=ManualScheduleClock(T0), config=False)
    tm.task(executor="process")(pt.add)
    with pytest.raises(TaskArgumentError, match="argument 'b' of task 'add'"):
        await tm.schedule_once(pt.add, 1, threading.Lock(), delay=60)
    with pytest.raises(TaskArgumentError, match="argument 'b'"):
        await tm.schedule_once(pt.add, 1, b=threading.Lock(), delay=60)
    assert await tm.list_scheduled() == []
    await tm.schedule_once(pt.add, 1, 2, delay=60, run_key="fine")
    assert [s.run_key for s in await tm.list_scheduled()] == ["fine"]


async def test_a_schedule_declared_with_executor_process_runs_in_a_worker() -> None:
    """`@schedule(executor="process")` declares a process task (checked like `@task`'s) and its run
    happens in a worker process, not in this one."""
    tm = TaskManager(schedule_clock=ManualScheduleClock(T0), max_process_workers=1, config=False)
    with pytest.raises(ConfigurationError, match="executor='process' needs a plain def"):

        @tm.schedule(every=60, name="coroutine", executor="process")
        async def coroutine() -> None:
            pass

    tm.schedule(every=3600, name="pid_job", executor="process")(pt.pid)
    assert tm.registry.get("pid_job").executor == "process"
    with anyio.fail_after(LIMIT):
        async with tm.running():
            run_id = await tm.run_schedule_now("pid_job")
            (record,) = await wait_finished(tm, [run_id], seconds=LIMIT)
    assert record.status is TaskStatus.SUCCESS
    (line,) = [line for line in record.logs if " pid " in line]
    assert int(line.rsplit(" ", 1)[1]) != os.getpid()
