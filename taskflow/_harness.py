"""Helpers for testing an app's own tasks (re-exported by `taskflow.testing`): wait until no task is pending
or running, record every change of every task, and read the records by function.

With `TaskManager(clock=FakeClock())` (from `supervisors.testing`) retries and backoff take no time: the
fake clock's sleeps return at once and record each delay in `clock.sleeps`. On trio, anyio's pytest plugin
can also run a test under trio's autojump clock (`anyio_backend = ("trio", {"clock":
trio.testing.MockClock(autojump_threshold=0)})`), where every sleep of the test jumps virtual time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio

from ._models import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from ._lifecycle import TaskChange
    from ._runtime import TaskRuntime

_BUSY = (TaskStatus.PENDING, TaskStatus.RUNNING)


def _busy(manager: TaskRuntime) -> int:
    counts = manager.table.counts()
    return sum(counts.get(status, 0) for status in _BUSY)


class _Wakeup:
    """A listener that wakes `run_until_idle` on each change made on the event loop's thread: the changes
    that end a task (RUNNING and the final states come from the supervisors, on the loop); changes made in
    worker threads (submissions from sync routes, log lines) never make the manager idle."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.event = anyio.Event()

    def take(self, changes: Sequence[TaskChange]) -> None:
        if threading.get_ident() == self.thread:
            self.event.set()


async def run_until_idle(manager: TaskRuntime, *, seconds: float = 10.0) -> None:
    """Wait until no task of `manager` is pending or running, then deliver the queued observer events.

    Woken by the tasks' changes, not by polling: under trio's autojump clock, time jumps straight to the
    next backoff deadline. TimeoutError after `seconds` (a task that never ends fails the test instead of
    hanging it). Use it in async tests, with `manager.running()` or an ASGI lifespan running the manager.
    """
    with anyio.fail_after(seconds):
        while _busy(manager):
            wakeup = _Wakeup()
            manager.listeners.add(wakeup)
            try:
                if _busy(manager):  # checked again once listening: no change slips between
                    await wakeup.event.wait()
            finally:
                manager.listeners.discard(wakeup)
        await manager.flush_observers()


def wait_until_idle(manager: TaskRuntime, *, seconds: float = 10.0) -> None:
    """`run_until_idle` for sync tests (FastAPI's `TestClient`, whose app runs in another thread)."""
    deadline = time.monotonic() + seconds
    while _busy(manager):
        if time.monotonic() > deadline:
            raise TimeoutError(f"tasks still pending or running after {seconds} s")
        time.sleep(0.001)


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """One change of one task as `TaskRecorder` saw it."""

    task_id: str
    func_name: str
    kind: str  # added, moved, updated, requeued
    previous: TaskStatus | None
    status: TaskStatus


class TaskRecorder:
    """Records every change of every task of a manager while it is open (`with TaskRecorder(m) as r:`).

    `changes` lists them in order; `statuses(task_id)` gives the status path of one task; `records(name)`
    the manager's records of one task function.
    """

    def __init__(self, manager: TaskRuntime) -> None:
        self.manager = manager
        self.changes: list[RecordedChange] = []
        self._lock = threading.Lock()  # changes of sync tasks arrive from worker threads

    def take(self, changes: Sequence[TaskChange]) -> None:
        with self._lock:
            self.changes.extend(
                RecordedChange(c.task_id, c.record.func_name, c.kind.value, c.previous, c.status)
                for c in changes
            )

    def __enter__(self) -> Self:
        self.manager.listeners.add(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.manager.listeners.discard(self)

    def statuses(self, task_id: str) -> list[TaskStatus]:
        """The statuses `task_id` went through, in order, without repeats."""
        path: list[TaskStatus] = []
        for change in self.changes:
            if change.task_id == task_id and (not path or path[-1] is not change.status):
                path.append(change.status)
        return path

    def records(self, func: str | Callable[..., Any] | None = None) -> list[TaskRecord]:
        """The manager's records (of one task function, by name or function), oldest first."""
        name = (
            func if isinstance(func, str) or func is None else self.manager.registry.definition_for(func).name
        )
        return [r for r in self.manager.table.records() if name is None or r.func_name == name]
