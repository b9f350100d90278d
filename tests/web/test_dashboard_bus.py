"""The change bus: coalescing, thread-safe handover, resume by event id, bounded memory, clean close."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from taskflow import TaskManager, TaskRecord, TaskStatus, task_log
from taskflow._lifecycle import ChangeKind, TaskChange
from taskflow.web._dashboard import event_stream
from taskflow.web._sse import ChangeBus
from taskflow.web._sse_ring import RING_SIZE
from tests.helpers import wait_until


def parse(text: str) -> list[dict[str, Any]]:
    """SSE text -> [{"event", "id", "data"}] (comments and retry fields dropped)."""
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            if key in ("event", "id", "data"):
                fields[key] = json.loads(value) if key == "data" else value
        if "data" in fields:
            messages.append(fields)
    return messages


def record(n: int, status: TaskStatus = TaskStatus.PENDING) -> TaskRecord:
    return TaskRecord(task_id=f"task-{n:04d}", func_name="work", status=status)


def note(bus: ChangeBus, rec: TaskRecord) -> None:
    """Hand the bus one change of `rec`, as the runtime's lifecycle does."""
    bus.take((TaskChange(ChangeKind.UPDATED, rec.task_id, rec.status, rec.status, rec, 0.0),))


@asynccontextmanager
async def running_bus(manager: TaskManager | None = None, **options: Any) -> AsyncIterator[ChangeBus]:
    manager = manager or TaskManager()
    async with manager.running(), ChangeBus(manager, **options).run() as bus:
        yield bus


async def test_a_burst_of_changes_to_one_task_is_one_event() -> None:
    """Many changes to a task between two flushes reach a client as one event with the last state."""
    async with running_bus() as bus:
        sub = bus.subscribe()
        rec = record(1)
        for status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCESS):
            rec.status = status
            note(bus, rec)
        await wait_until(lambda: bus.seq >= 1)
        events = parse(bus.drain(sub))
        tasks = [e for e in events if e["event"] == "task"]
        assert len(tasks) == 1
        assert tasks[0]["data"]["status"] == "success"
        assert tasks[0]["id"] == bus.event_id(bus.seq)


async def test_the_bus_lets_go_of_changes_once_published() -> None:
    """Between flushes the bus keeps no record it already published: thousands of them, evicted or packed
    by the task table meanwhile, would otherwise stay alive until the next change."""
    import sys

    async with running_bus() as bus:
        rec = record(1, TaskStatus.SUCCESS)
        baseline = sys.getrefcount(rec)
        note(bus, rec)
        assert sys.getrefcount(rec) == baseline + 1
        await wait_until(lambda: not bus._pending and sys.getrefcount(rec) == baseline, seconds=2)
        assert sys.getrefcount(rec) == baseline


async def test_a_slow_client_gets_one_event_per_task() -> None:
    """A client that misses several flushes still gets each task once, in order of its latest change."""
    async with running_bus() as bus:
        sub = bus.subscribe()
        first, second = record(1), record(2)
        for rec in (first, second, first):
            note(bus, rec)
            seq = bus.seq
            await wait_until(lambda seq=seq: bus.seq > seq)
        ids = [e["data"]["task_id"] for e in parse(bus.drain(sub)) if e["event"] == "task"]
        assert ids == ["task-0002", "task-0001"]
        assert bus.drain(sub) == ""


async def test_one_batch_of_changes_to_several_tasks_is_one_event_per_task() -> None:
    """A batch with changes of two tasks (as adoption and shutdown hand them over) reaches a client as one
    event per task, whichever thread hands it over."""
    async with running_bus() as bus:
        sub = bus.subscribe()
        first, second = record(1), record(2, TaskStatus.RUNNING)
        changes = [TaskChange(ChangeKind.ADDED, r.task_id, None, r.status, r, 0.0) for r in (first, second)]
        changes.append(TaskChange(ChangeKind.MOVED, first.task_id, first.status, first.status, first, 0.0))
        await anyio.to_thread.run_sync(bus.take, changes)  # from a worker thread, as a sync route's are
        await wait_until(lambda: bus.seq >= 2)
        tasks = [e["data"] for e in parse(bus.drain(sub)) if e["event"] == "task"]
        assert [(t["task_id"], t["status"]) for t in tasks] == [
            ("task-0001", "pending"),
            ("task-0002", "running"),
        ]


async def test_change_events_are_small_rows() -> None:
    """`event: task` carries no logs, traceback or arguments; errors are cut to an excerpt."""
    async with running_bus(display_func_args=True) as bus:
        sub = bus.subscribe()
        rec = record(1, TaskStatus.FAILED)
        rec.logs = ["line"] * 1000
        rec.stacktrace = "Traceback..." * 1000
        rec.error = "x" * 10_000
        rec.args = ("secret-arg",)
        note(bus, rec)
        await wait_until(lambda: bus.seq >= 1)
        text = bus.drain(sub)
        data = parse(text)[0]["data"]
        assert data["log_count"] == 1000
        assert "logs" not in data
        assert "stacktrace" not in data
        assert "args" not in data
        assert len(data["error"]) == 300
        assert len(text) < 1500


async def test_changes_from_worker_threads_are_handed_over() -> None:
    """Log lines of a sync task (worker thread) reach the stream without touching anyio from that thread."""
    manager = TaskManager()

    @manager.task()
    def chatty() -> None:
        for i in range(50):
            task_log(f"line {i}")

    async with running_bus(manager) as bus:
        sub = bus.subscribe()
        task_id, _ = manager.launcher.submit(chatty, (), {})
        await manager.launcher.start(task_id)
        await wait_until(lambda: manager.get(task_id).status is TaskStatus.SUCCESS)
        events: list[dict[str, Any]] = []

        def finished() -> bool:
            events.extend(e for e in parse(bus.drain(sub)) if e["event"] == "task")
            return any(e["data"]["status"] == "success" for e in events)

        await wait_until(finished)
        assert len(events) < 50  # coalesced: far fewer events than changes
        assert events[-1]["data"]["log_count"] == 50


async def test_changes_from_plain_threads_wake_the_flusher() -> None:
    """A change reported from a foreign thread while the flusher sleeps is delivered."""
    async with running_bus() as bus:
        sub = bus.subscribe()
        await anyio.sleep(0.2)  # let the flusher go idle
        await anyio.to_thread.run_sync(note, bus, record(7))
        await wait_until(lambda: bus.seq == 1)
        assert parse(bus.drain(sub))[0]["data"]["task_id"] == "task-0007"


async def test_resume_replays_only_what_was_missed() -> None:
    """A Last-Event-ID of this bus resumes after it; a foreign, future or too old one gets a snapshot."""
    async with running_bus() as bus:
        bus.subscribe()  # another client stays connected, so the ring keeps every change
        note(bus, record(1))
        await wait_until(lambda: bus.seq == 1)
        seen = bus.event_id(bus.seq)
        note(bus, record(2))
        await wait_until(lambda: bus.seq == 2)
        assert bus.resume_point(seen) == 1
        sub = bus.subscribe()
        sub.seq = 1
        assert [e["data"]["task_id"] for e in parse(bus.drain(sub)) if e["event"] == "task"] == ["task-0002"]
        for foreign in ("deadbeef-1", f"{bus.epoch}-99", f"{bus.epoch}-x", "", None, "junk"):
            assert bus.resume_point(foreign) is None


async def test_changes_while_nobody_watches_are_not_serialised_and_resume_gets_a_snapshot() -> None:
    """With no client connected, changes skip the ring (no JSON built); a later resume gets `state`."""
    async with running_bus() as bus:
        seen = bus.event_id(bus.seq)
        bus._publish([record(1), record(2)])
        assert bus.seq == 0 and all(entry is None for entry in bus._ring.entries)
        assert bus.resume_point(seen) is None


async def test_a_client_behind_the_ring_gets_a_snapshot() -> None:
    """Memory is bounded by the ring: a client that falls further behind gets `state` instead of a replay."""
    async with running_bus() as bus:
        sub = bus.subscribe()
        bus._publish(record(i) for i in range(RING_SIZE + 10))
        assert bus.resume_point(bus.event_id(0)) is None
        events = parse(bus.drain(sub))
        assert [e["event"] for e in events] == ["state"]
        assert sub.seq == bus.seq


async def test_snapshot_has_the_050_keys_and_only_the_first_page() -> None:
    """`event: state` carries `tasks` (first page, full dicts) and `metrics` with 0.5.0's keys."""
    manager = TaskManager()
    for i in range(120):
        manager.table.add(record(i, TaskStatus.SUCCESS))
    async with running_bus(manager, page_size=50) as bus:
        (state,) = parse(bus.snapshot(bus.subscribe()))
        assert state["event"] == "state"
        data = state["data"]
        assert len(data["tasks"]) == 50
        assert "logs" in data["tasks"][0]
        next_page = manager.query(limit=50, cursor=data["next_cursor"]).records
        assert next_page[0].task_id == "task-0069"
        for key in ("total", "pending", "running", "success", "failed", "success_rate", "avg_duration_ms",
                    "interrupted", "cancelled"):  # fmt: skip
            assert key in data["metrics"]


async def test_stream_sends_snapshot_changes_and_keepalives_then_ends_on_close() -> None:
    """The generator: retry field, snapshot, change events, keep-alive comments, and an end on close."""
    async with running_bus() as bus:
        chunks: list[str] = []

        async def consume() -> None:
            async for chunk in event_stream(bus, None, poll_interval=0.05):
                chunks.append(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await wait_until(lambda: bus.subscribers == 1)
            note(bus, record(3))
            await wait_until(lambda: any("task-0003" in c for c in chunks))
            await wait_until(lambda: any(c.startswith(": keep-alive") for c in chunks))
            bus.close()
        text = "".join(chunks)
        assert text.startswith("retry: 3000\n\n")
        assert [e["event"] for e in parse(text)][:2] == ["state", "task"]
        assert bus.subscribers == 0


async def test_stream_without_a_running_bus_sends_a_snapshot_and_ends() -> None:
    """Without the app lifespan there is no flusher: the stream is one snapshot (the browser retries)."""
    bus = ChangeBus(TaskManager())
    chunks = [chunk async for chunk in event_stream(bus, None, poll_interval=30)]
    assert [e["event"] for e in parse("".join(chunks))] == ["state"]


async def test_the_listener_is_removed_when_the_bus_stops() -> None:
    """After its block the bus no longer listens to the manager, and it cannot be run twice."""
    manager = TaskManager()
    bus = ChangeBus(manager)
    async with bus.run():
        assert bus in manager.listeners
    assert bus not in manager.listeners
    with pytest.raises(RuntimeError):
        async with bus.run():
            pass


async def test_snapshot_size_does_not_grow_with_history() -> None:
    """The snapshot carries one page, whether the manager holds a hundred tasks or twenty thousand."""
    sizes = []
    for count in (100, 20_000):
        manager = TaskManager(max_terminal_records=None)
        for i in range(count):
            manager.table.add(record(i, TaskStatus.SUCCESS))
        async with running_bus(manager) as bus:
            sizes.append(len(bus.snapshot(bus.subscribe())))
    assert abs(sizes[0] - sizes[1]) < 200  # only the digits of the counters differ
