"""Sync tasks under `max_sync_threads` run on the supervisor's thread lane: bounded threads, the task's
context inside the body, and a durable task's body only after its RUNNING state is committed."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

import anyio

from taskflow import TaskManager, TaskStatus, get_task_context
from tests.helpers import wait_finished
from tests.taskflow.test_persistence import GatedStore

USER_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("USER_VAR", default="unset")


async def add(manager: TaskManager, func: Any, *args: Any) -> str:
    task_id, created = manager.launcher.submit(func, args, {})
    if created:
        await manager.launcher.start(task_id)
    return task_id


async def test_sync_tasks_use_at_most_max_sync_threads_distinct_threads() -> None:
    """200 sync tasks with max_sync_threads=2 run on at most 2 distinct threads, `running` <= 2 throughout."""
    tm = TaskManager(max_sync_threads=2)
    threads: set[int] = set()
    running: list[int] = []

    @tm.task()
    def job(i: int) -> int:
        threads.add(threading.get_ident())
        if i % 5 == 0:
            time.sleep(0.001)
        return i

    async with tm.running():
        root = tm.launcher.root
        assert root is not None
        ids = []
        for i in range(200):
            ids.append(await add(tm, job, i))
            running.append(root.statistics().running)
        with anyio.fail_after(30):
            while not all(tm.table.get(t).status.is_terminal for t in ids):  # type: ignore[union-attr]
                running.append(root.statistics().running)
                await anyio.sleep(0.001)
        records = await wait_finished(tm, ids, seconds=30)
    assert all(r.status is TaskStatus.SUCCESS for r in records)
    assert 1 <= len(threads) <= 2
    assert max(running) <= 2


async def test_a_sync_task_on_the_lane_sees_its_task_context_and_the_callers_contextvars() -> None:
    """Inside a sync task on the lane, get_task_context() is the task's and a ContextVar set by the caller
    holds the caller's value."""
    tm = TaskManager(max_sync_threads=1)
    seen: list[tuple[str | None, str]] = []

    @tm.task()
    def job() -> None:
        ctx = get_task_context()
        seen.append((ctx.task_id if ctx is not None else None, USER_VAR.get()))

    async with tm.running():
        token = USER_VAR.set("from the request")
        first = await add(tm, job)
        USER_VAR.reset(token)
        second = await add(tm, job)
        await wait_finished(tm, [first, second])
    assert sorted(seen) == sorted([(first, "from the request"), (second, "unset")])  # trio: either order


async def test_a_durable_sync_task_on_the_lane_waits_for_its_running_commit() -> None:
    """A persist=True sync task under max_sync_threads starts its body only once the store has committed."""
    store = GatedStore()
    tm = TaskManager(snapshot_backend=store, max_sync_threads=2)
    ran: list[int] = []

    @tm.task(persist=True)
    def durable(n: int) -> None:
        ran.append(n)

    async with tm.running():
        task_id = await add(tm, durable, 7)
        with anyio.fail_after(5):
            while tm.table.get(task_id).status is not TaskStatus.RUNNING:  # type: ignore[union-attr]
                await anyio.sleep(0.005)
        await anyio.sleep(0.1)
        assert ran == []  # the commit of its RUNNING state is held by the gate
        store.gate.set()
        (record,) = await wait_finished(tm, [task_id])
    assert record.status is TaskStatus.SUCCESS
    assert ran == [7]


async def test_a_sync_task_past_its_timeout_fails_and_the_lane_keeps_running_tasks() -> None:
    """Under max_sync_threads=2 a sync task past its timeout fails; the other worker still runs tasks."""
    tm = TaskManager(max_sync_threads=2)
    release = threading.Event()
    threads: set[int] = set()

    @tm.task(timeout=0.05)
    def stuck() -> None:
        threads.add(threading.get_ident())
        release.wait(10)

    @tm.task()
    def quick() -> None:
        threads.add(threading.get_ident())

    async with tm.running():
        (record,) = await wait_finished(tm, [await add(tm, stuck)])
        assert record.status is TaskStatus.FAILED
        quick_ids = [await add(tm, quick) for _ in range(20)]
        records = await wait_finished(tm, quick_ids)
        release.set()
    assert all(r.status is TaskStatus.SUCCESS for r in records)
    assert len(threads) <= 2
