"""How the lifecycle hands changes to its sinks: only the changes a sink wants, and the listeners' changes
batched per turn of the event loop while the lifespan runs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import anyio

from taskflow import TaskManager, TaskRecord, TaskStatus
from taskflow._lifecycle import TICK_BATCH_LIMIT, ChangeKind, Lifecycle, TaskChange
from taskflow._table import TaskTable
from tests.helpers import wait_finished


class Batches:
    """A sink that keeps each batch it is given, and the thread that handed it over."""

    def __init__(self) -> None:
        self.batches: list[list[TaskChange]] = []
        self.threads: list[int] = []

    def take(self, changes: Sequence[TaskChange]) -> None:
        self.batches.append(list(changes))
        self.threads.append(threading.get_ident())

    @property
    def changes(self) -> list[TaskChange]:
        return [c for batch in self.batches for c in batch]


class NoUpdates(Batches):
    """A sink that says it wants every change but the UPDATED ones."""

    @staticmethod
    def wants(kind: ChangeKind, status: TaskStatus) -> bool:
        return kind is not ChangeKind.UPDATED


def _record(task_id: str) -> TaskRecord:
    return TaskRecord(task_id=task_id, func_name="f", status=TaskStatus.PENDING)


def test_a_sink_gets_only_the_changes_it_wants() -> None:
    """A sink whose `wants` refuses UPDATED never sees a log line's change; a sink without `wants` does."""
    picky, greedy = NoUpdates(), Batches()
    lc = Lifecycle(TaskTable(), [picky, greedy])
    record = _record("t1")
    lc.admit(record)
    lc.update(record)
    lc.move(record, TaskStatus.RUNNING)
    assert [c.kind for c in picky.changes] == [ChangeKind.ADDED, ChangeKind.MOVED]
    assert [c.kind for c in greedy.changes] == [ChangeKind.ADDED, ChangeKind.UPDATED, ChangeKind.MOVED]


def _listened() -> tuple[TaskManager, Batches, Any]:
    """A manager with a `Batches` listener and a no-op task function."""
    tm = TaskManager()
    listener = Batches()
    tm.listeners.add(listener)

    @tm.task()
    async def job() -> None:
        pass

    return tm, listener, job


async def test_a_turn_with_many_changes_hands_them_over_in_bounded_batches() -> None:
    """A turn that admits more tasks than `TICK_BATCH_LIMIT` hands its changes over as it goes, in order,
    in batches of that size, the rest at the end of the turn: none held for the whole turn."""
    tm, listener, job = _listened()
    count = 2 * TICK_BATCH_LIMIT + 10
    async with tm.running():
        ids = [tm.launcher.submit(job, (), {})[0] for _ in range(count)]  # one turn
        assert [len(batch) for batch in listener.batches] == [TICK_BATCH_LIMIT, TICK_BATCH_LIMIT]
        await anyio.sleep(0.01)
        assert [len(batch) for batch in listener.batches] == [TICK_BATCH_LIMIT, TICK_BATCH_LIMIT, 10]
        assert [c.task_id for c in listener.changes] == ids
        await tm.launcher.start_after_response(ids)
        await wait_finished(tm, ids)


async def test_listeners_get_one_batch_per_turn_of_the_loop() -> None:
    """While the lifespan runs, the changes made in one turn of the loop reach a listener in one call."""
    tm, listener, job = _listened()
    async with tm.running():
        ids = [tm.launcher.submit(job, (), {})[0] for _ in range(10)]  # one turn: no checkpoint between
        assert listener.batches == []  # not handed over yet: the turn is not over
        await anyio.sleep(0.01)
        assert [[c.task_id for c in batch] for batch in listener.batches] == [ids]
        await tm.launcher.start_after_response(ids)
        await wait_finished(tm, ids)
        await tm.flush_observers()
        for task_id in ids:
            mine = [(c.kind, c.status) for c in listener.changes if c.task_id == task_id]
            assert mine == [
                (ChangeKind.ADDED, TaskStatus.PENDING),
                (ChangeKind.MOVED, TaskStatus.RUNNING),
                (ChangeKind.MOVED, TaskStatus.SUCCESS),
            ]


async def test_changes_made_in_a_worker_thread_reach_listeners_on_the_loop_in_order() -> None:
    """A change made off the loop while the lifespan runs is handed to listeners on the loop's thread."""
    tm = TaskManager()
    listener = Batches()
    tm.listeners.add(listener)

    @tm.task()
    def job() -> None:
        pass

    async with tm.running():
        loop_thread = threading.get_ident()
        ids = await anyio.to_thread.run_sync(lambda: [tm.launcher.submit(job, (), {})[0] for _ in range(5)])
        await anyio.sleep(0.01)
        assert [c.task_id for c in listener.changes] == ids
        assert set(listener.threads) == {loop_thread}


async def test_changes_left_at_the_end_of_the_lifespan_are_handed_over() -> None:
    """Changes still waiting for their turn when the lifespan ends reach the listeners; later ones at once."""
    tm = TaskManager()
    listener = Batches()
    tm.listeners.add(listener)

    @tm.task()
    async def job() -> None:
        pass

    async with tm.running():
        first, _ = tm.launcher.submit(job, (), {})
    assert first in [c.task_id for c in listener.changes]
    later, _ = tm.launcher.submit(job, (), {})
    assert listener.changes[-1].task_id == later  # no loop bound: handed over as it happens
