"""ObserverDispatcher: ordered, batched delivery that a slow, raising or absent observer cannot disturb."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from taskflow._models import TaskStatus
from taskflow.observers import (
    FileLogger,
    InMemoryLogger,
    LifecycleEvent,
    LogEvent,
    ObserverDispatcher,
    TaskObserver,
    _dispatcher,
)

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def log_event(n: int) -> LogEvent:
    return LogEvent(f"task-{n}", "job", f"line {n}", "info", WHEN, 0)


def lifecycle(n: int) -> LifecycleEvent:
    return LifecycleEvent(f"task-{n}", "job", TaskStatus.SUCCESS, WHEN, 0, 0)


class Recording(TaskObserver):
    """Records hooks in order; `until(n)` waits until n events arrived."""

    def __init__(self) -> None:
        super().__init__(min_level="debug")
        self.calls: list[str] = []
        self.messages: list[str] = []
        self._waiters: list[tuple[int, anyio.Event]] = []

    def _arrived(self, label: str) -> None:
        self.messages.append(label)
        for count, event in self._waiters:
            if len(self.messages) >= count:
                event.set()

    async def until(self, count: int) -> None:
        if len(self.messages) < count:
            event = anyio.Event()
            self._waiters.append((count, event))
            await event.wait()

    async def on_log(self, event: LogEvent) -> None:
        self._arrived(event.message)

    async def on_lifecycle(self, event: LifecycleEvent) -> None:
        self._arrived(f"{event.task_id} {event.status.value}")

    async def startup(self) -> None:
        self.calls.append("startup")

    async def flush(self) -> None:
        self.calls.append("flush")

    async def close(self) -> None:
        self.calls.append("close")


class Slow(Recording):
    """Blocks in on_log until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = anyio.Event()
        self.blocked = anyio.Event()

    async def on_log(self, event: LogEvent) -> None:
        self.blocked.set()
        await self.release.wait()
        await super().on_log(event)


class Raising(Recording):
    async def on_log(self, event: LogEvent) -> None:
        raise RuntimeError("observer bug")


@asynccontextmanager
async def running(dispatcher: ObserverDispatcher) -> AsyncIterator[anyio.abc.TaskGroup]:
    """Run the dispatcher as the runtime does, and stop it (cancel) on exit."""
    async with anyio.create_task_group() as tg:
        await tg.start(dispatcher.run)
        yield tg
        tg.cancel_scope.cancel()


async def test_without_observers_it_is_inactive_and_inert() -> None:
    """No observers: `active` is False, emit is a no-op, drain and run return cleanly."""
    dispatcher = ObserverDispatcher([])
    assert dispatcher.active is False
    dispatcher.emit_log(log_event(1))
    await dispatcher.drain()
    async with running(dispatcher):
        pass
    assert dispatcher.statistics() == _dispatcher.ObserverStatistics(0, 0, 0, 0)


async def test_drain_without_run_delivers_in_order_then_flushes() -> None:
    """drain() alone (no lifespan) delivers everything so far, in order, then calls flush()."""
    observer = Recording()
    dispatcher = ObserverDispatcher([observer])
    dispatcher.emit_log(log_event(1))
    dispatcher.emit_lifecycle(lifecycle(2))
    dispatcher.emit_log(log_event(3))
    await dispatcher.drain()
    assert observer.messages == ["line 1", "task-2 success", "line 3"]
    assert observer.calls == ["flush"]
    stats = dispatcher.statistics()
    assert (stats.queued, stats.delivered, stats.dropped, stats.errors) == (0, 3, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.queued = 1  # type: ignore[misc]


async def test_run_starts_delivers_and_closes_observers() -> None:
    """run() awaits startup() before started(), delivers while running, and closes after the last event."""
    observer = Recording()
    dispatcher = ObserverDispatcher([observer])
    async with running(dispatcher):
        assert observer.calls == ["startup"]
        dispatcher.emit_log(log_event(1))
        await observer.until(1)  # woken by the emit itself, not by drain()
        dispatcher.emit_log(log_event(2))  # still queued when the shutdown starts
    assert observer.messages == ["line 1", "line 2"]
    assert observer.calls[0] == "startup"
    assert observer.calls[-2:] == ["flush", "close"]


async def test_events_emitted_during_shutdown_are_delivered_before_close() -> None:
    """An event emitted while the final delivery runs (a task reporting its end) still arrives."""

    class Echo(Recording):
        async def on_log(self, event: LogEvent) -> None:
            await super().on_log(event)
            if event.message == "line 1":
                dispatcher.emit_log(log_event(2))

    observer = Echo()
    dispatcher = ObserverDispatcher([observer])
    async with running(dispatcher):
        dispatcher.emit_log(log_event(1))
    assert observer.messages == ["line 1", "line 2"]
    assert observer.calls[-1] == "close"


async def test_event_from_a_worker_thread_arrives_without_drain() -> None:
    """A sync task's thread only appends; the dispatcher's polling picks the event up promptly."""
    observer = Recording()
    dispatcher = ObserverDispatcher([observer])
    async with running(dispatcher):
        await anyio.to_thread.run_sync(dispatcher.emit_log, log_event(1))
        with anyio.fail_after(5):
            await observer.until(1)
    assert observer.messages == ["line 1"]


async def test_drain_while_running_waits_for_delivery() -> None:
    """drain() during run() returns once every observer has what was emitted before the call."""
    observer = Recording()
    dispatcher = ObserverDispatcher([observer])
    async with running(dispatcher):
        for n in range(5):
            await anyio.to_thread.run_sync(dispatcher.emit_log, log_event(n))
        with anyio.fail_after(5):
            await dispatcher.drain()
        assert len(observer.messages) == 5


async def test_slow_observer_delays_neither_emit_nor_other_observers() -> None:
    """While one observer is stuck on an event, emit returns at once and the others keep receiving."""
    slow, fast = Slow(), Recording()
    dispatcher = ObserverDispatcher([slow, fast])
    async with running(dispatcher):
        dispatcher.emit_log(log_event(1))
        with anyio.fail_after(5):
            await slow.blocked.wait()
        started = time.perf_counter()
        for n in range(2, 102):
            dispatcher.emit_log(log_event(n))
        assert time.perf_counter() - started < 0.05  # 100 emits; generous, catches blocking only
        with anyio.fail_after(5):
            await fast.until(101)
        assert slow.messages == []
        assert dispatcher.statistics().queued == 100  # the one in flight counts as given
        slow.release.set()
        with anyio.fail_after(5):
            await dispatcher.drain()
        assert slow.messages == fast.messages


async def test_raising_observer_is_counted_logged_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """Exceptions from an observer are logged on taskflow.observers and counted; others get every event."""
    broken, working = Raising(), Recording()
    dispatcher = ObserverDispatcher([broken, working])
    with caplog.at_level(logging.ERROR, logger="taskflow.observers"):
        async with running(dispatcher):
            dispatcher.emit_log(log_event(1))
            dispatcher.emit_log(log_event(2))
            await dispatcher.drain()
    assert working.messages == ["line 1", "line 2"]
    assert dispatcher.statistics().errors == 2
    assert caplog.text.count("failed in on_log") == 2


async def test_overflow_drops_the_oldest_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """Past max_queue the oldest events go, counted in `dropped`, with a single warning."""
    observer = Recording()
    dispatcher = ObserverDispatcher([observer], max_queue=3)
    with caplog.at_level(logging.WARNING, logger="taskflow.observers"):
        for n in range(5):
            dispatcher.emit_log(log_event(n))
        await dispatcher.drain()
    assert observer.messages == ["line 2", "line 3", "line 4"]
    assert dispatcher.statistics().dropped == 2
    assert caplog.text.count("dropping the oldest") == 1


async def test_backlog_of_a_stuck_observer_is_bounded() -> None:
    """A stuck observer's backlog stays within max_queue; it resumes with the newest events."""
    slow = Slow()
    dispatcher = ObserverDispatcher([slow], max_queue=3)
    async with running(dispatcher):
        dispatcher.emit_log(log_event(0))
        with anyio.fail_after(5):
            await slow.blocked.wait()
        for n in range(1, 11):
            dispatcher.emit_log(log_event(n))
            await anyio.wait_all_tasks_blocked()  # let the pump move it into the log
        assert dispatcher.statistics().queued <= 4  # the one in flight, plus max_queue
        slow.release.set()
        with anyio.fail_after(5):
            await dispatcher.drain()
    assert slow.messages == ["line 0", "line 8", "line 9", "line 10"]
    assert dispatcher.statistics().dropped == 7


async def test_shutdown_is_bounded_when_an_observer_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A never-returning observer cannot hold the shutdown: delivery and close() are each bounded."""
    monkeypatch.setattr(_dispatcher, "SHUTDOWN_TIMEOUT", 0.05)
    slow, other = Slow(), Recording()
    dispatcher = ObserverDispatcher([slow, other])
    with anyio.fail_after(5):
        async with running(dispatcher):
            dispatcher.emit_log(log_event(1))
            await slow.blocked.wait()
    assert other.calls[-1] == "close"
    assert other.messages == ["line 1"]


async def test_file_logger_gets_one_thread_hop_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty lines delivered in one batch cost one worker-thread write, not fifty."""
    hops: list[Callable[..., Any]] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    path = tmp_path / "tasks.log"
    file_logger = FileLogger(path)
    dispatcher = ObserverDispatcher([file_logger])
    for n in range(50):
        dispatcher.emit_log(log_event(n))
    await dispatcher.drain()
    assert len(hops) == 1
    await file_logger.close()
    assert len(path.read_text().splitlines()) == 50


async def test_run_twice_at_once_is_refused() -> None:
    """One dispatcher runs in one place."""
    dispatcher = ObserverDispatcher([InMemoryLogger()])
    async with running(dispatcher):
        with pytest.raises(RuntimeError, match="already running"):
            await dispatcher.run()


def test_max_queue_must_be_positive() -> None:
    """max_queue below 1 is refused."""
    with pytest.raises(ValueError, match="max_queue"):
        ObserverDispatcher([InMemoryLogger()], max_queue=0)
