"""Supervised children as tasks of a trio nursery that the host task opens, and the thread lane's waits
(imported only on trio).

The nursery is our own, opened with trio's public `open_nursery()` inside the host task, which runs in the
supervisor's anyio task group: trio's scopes then carry cancellation and errors to and from the children
exactly as they do for anyio's own tasks, and only anyio's per-spawn `TaskHandle` is skipped.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import trio

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

    from ._child_tasks import ChildCoroutine, ChildTasks
    from ._lane import LaneJob


class TrioChildTasks:
    """Children straight in a trio nursery of the host task's own."""

    __slots__ = ("_closed", "_nursery")

    def __init__(self) -> None:
        self._closed = anyio.Event()
        self._nursery: trio.Nursery | None = None

    def spawn(
        self, fn: ChildCoroutine, args: tuple[Any, ...], name: str, context: contextvars.Context | None
    ) -> None:
        nursery = self._nursery
        assert nursery is not None, "the host is not running"
        if context is None:
            nursery.start_soon(fn, *args, name=name)
        else:  # trio copies the spawner's context into the new task
            context.run(nursery.start_soon, fn, *args, name=name)

    def close(self) -> None:
        self._closed.set()

    async def run(self, *, task_status: TaskStatus[ChildTasks]) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self)
            await self._closed.wait()


def threadsafe_caller() -> Callable[..., object]:
    """`call(fn, *args)` from any thread runs `fn(*args)` in the running trio loop, in the order sent."""
    return trio.lowlevel.current_trio_token().run_sync_soon


async def wait_rescheduled(job: LaneJob) -> None:
    """Sleep until a thread lane's drain hands `job.waiter` (this task) to `reschedule`; a cancellation
    (trio's own, so anyio's scopes) wakes it instead and clears `job.waiter`."""
    if job.notes == 2:
        return  # ended before we waited (cannot happen today: the attempt waits right after submitting)
    job.waiter = trio.lowlevel.current_task()

    def abort(_: object) -> trio.lowlevel.Abort:
        job.waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_task_rescheduled(abort)


def reschedule(task: trio.lowlevel.Task) -> None:
    trio.lowlevel.reschedule(task)
