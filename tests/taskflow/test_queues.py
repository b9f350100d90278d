"""Named queues: priority order, FIFO within a priority, rejection at max_size (REJECTED, key released),
live resize, cancel while queued, shutdown with queued tasks, the process backlog (max_pending), config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from taskflow import (
    BacklogFull,
    ConfigurationError,
    QueueConfig,
    QueueFull,
    QueueFullError,
    SqliteBackend,
    TaskManager,
    TaskRejected,
    TaskStatus,
)
from taskflow._config import load_config
from taskflow.web import ManagedBackgroundTasks
from tests.helpers import wait_finished, wait_until


async def submit(tm: TaskManager, func: Any, *args: Any, **options: Any) -> str:
    """What a request does: add the task, then run its after-response item (which returns at once while
    the lifespan runs)."""
    tasks = ManagedBackgroundTasks(tm)
    task_id = tasks.add_task(func, *args, **options)
    for item in tasks.tasks:
        await item()
    return task_id


class Gate:
    """Tasks that record their order and may be held until `open()`."""

    def __init__(self) -> None:
        self.order: list[Any] = []
        self.running = 0
        self.peak = 0
        self.release = anyio.Event()

    async def hold(self, label: Any) -> None:
        self.order.append(label)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1

    async def note(self, label: Any) -> None:
        self.order.append(label)


def queue(tm: TaskManager, name: str = "q") -> dict[str, Any]:
    return next(q for q in tm.queue_stats() if q["name"] == name)


async def test_higher_priority_runs_first_fifo_within_a_priority() -> None:
    """With one slot busy, waiting tasks start by priority (higher first), in submission order among
    equals, whatever the order they were added in."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)
    note = tm.task(queue="q")(gate.note)
    async with tm.running():
        first = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.order == ["blocker"])
        ids = [
            await submit(tm, note, label, priority=priority)
            for label, priority in [("p1", 1), ("p5-a", 5), ("p0", 0), ("p3", 3), ("p5-b", 5), ("p1-b", 1)]
        ]
        assert queue(tm)["pending"] == 6 and queue(tm)["running"] == 1
        gate.release.set()
        await wait_finished(tm, [first, *ids])
    assert gate.order == ["blocker", "p5-a", "p5-b", "p3", "p1", "p1-b", "p0"]
    assert queue(tm) | {"finished": 7} == queue(tm) and queue(tm)["pending"] == 0


async def test_decorator_priority_and_per_call_override() -> None:
    """`@task(priority=)` orders by default; `add_task(priority=)` overrides it for one call."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q", name="hold")(gate.hold)
    urgent = tm.task(queue="q", priority=10, name="urgent")(gate.note)

    async def plain(label: str) -> None:
        gate.order.append(label)

    tm.task(queue="q", name="plain")(plain)
    async with tm.running():
        await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.running == 1)
        ids = [
            await submit(tm, plain, "plain"),
            await submit(tm, urgent, "urgent"),
            await submit(tm, urgent, "demoted", priority=-1),
            await submit(tm, plain, "promoted", priority=20),
        ]
        gate.release.set()
        await wait_finished(tm, ids)
    assert gate.order == ["blocker", "promoted", "urgent", "plain", "demoted"]


async def test_queued_tasks_run_without_a_lifespan_in_priority_order() -> None:
    """No lifespan (inline runs): the request's after-response item waits for its queue's slot, so the
    limit and the order hold and no task is left PENDING (fastapi-taskflow's bug 21)."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)
    note = tm.task(queue="q")(gate.note)
    ids: list[str] = []
    async with anyio.create_task_group() as tg:

        async def request(func: Any, label: str, priority: int) -> None:
            tasks = ManagedBackgroundTasks(tm)
            ids.append(tasks.add_task(func, label, priority=priority))
            await tasks.tasks[0]()

        tg.start_soon(request, hold, "blocker", 0)
        await wait_until(lambda: gate.running == 1)
        for label, priority in [("low", 0), ("high", 9), ("mid", 4)]:
            tg.start_soon(request, note, label, priority)
        await wait_until(lambda: queue(tm)["pending"] == 3)
        gate.release.set()
    assert gate.order == ["blocker", "high", "mid", "low"] and gate.peak == 1
    assert {tm.get(i).status for i in ids} == {TaskStatus.SUCCESS}


async def test_a_full_queue_rejects_and_releases_the_idempotency_key() -> None:
    """Past max_size waiting tasks, add_task raises QueueFull (a TaskRejected); the record is REJECTED in
    history with a reason, and its idempotency key is free: the same key later runs (bug 9 not copied)."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1, max_size=1)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)
    note = tm.task(queue="q")(gate.note)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.running == 1)
        waiting = await submit(tm, note, "waiting")
        with pytest.raises(QueueFull) as refused:
            await submit(tm, note, "refused", idempotency_key="order-7")
        rejected = tm.get(refused.value.task_id)
        assert isinstance(refused.value, TaskRejected) and QueueFullError is QueueFull
        assert refused.value.queue == "q" and refused.value.retry_after > 0
        assert rejected.status is TaskStatus.REJECTED and "full" in (rejected.status_reason or "")
        assert queue(tm)["rejected"] == 1 and queue(tm)["pending"] == 1
        gate.release.set()
        await wait_finished(tm, [blocker, waiting])
        again = await submit(tm, note, "again", idempotency_key="order-7")
        await wait_finished(tm, [again])
    assert again != rejected.task_id and tm.get(again).status is TaskStatus.SUCCESS
    assert gate.order == ["blocker", "waiting", "again"]
    assert tm.get(rejected.task_id).status is TaskStatus.REJECTED


async def test_raising_concurrency_starts_waiting_tasks_and_lowering_lets_running_finish() -> None:
    """update_queue_config: a higher concurrency starts waiting tasks at once; a lower one stops none of
    the running tasks, but new ones wait until the running count is under it. Fields not given stay."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1, max_size=50)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)
    async with tm.running():
        first = [await submit(tm, hold, i) for i in range(3)]
        await wait_until(lambda: gate.running == 1)
        stats = tm.update_queue_config("q", concurrency=3)
        assert stats["concurrency"] == 3 and stats["max_size"] == 50  # max_size kept (bug 10 not copied)
        await wait_until(lambda: gate.running == 3)
        assert tm.update_queue_config("q", concurrency=1)["running"] == 3  # nothing stopped
        later_gate = Gate()
        later_hold = tm.task(queue="q", name="later")(later_gate.hold)
        later = [await submit(tm, later_hold, i) for i in range(3)]
        assert queue(tm)["pending"] == 3
        gate.release.set()
        await wait_finished(tm, first)
        await wait_until(lambda: later_gate.running == 1)
        later_gate.release.set()
        await wait_finished(tm, later)
    assert later_gate.peak == 1 and later_gate.order == [0, 1, 2]
    assert tm.update_queue_config("q", max_size=None) == queue(tm) and queue(tm)["max_size"] is None


async def test_cancelling_a_queued_task_removes_it_and_it_never_runs() -> None:
    """A task cancelled while it waits in its queue is CANCELLED and never runs (bug 1 not copied)."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)
    note = tm.task(queue="q")(gate.note)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.running == 1)
        doomed = await submit(tm, note, "doomed")
        kept = await submit(tm, note, "kept")
        tm.cancel(doomed)
        assert queue(tm)["pending"] == 1
        gate.release.set()
        await wait_finished(tm, [blocker, kept])
    assert gate.order == ["blocker", "kept"] and tm.get(doomed).status is TaskStatus.CANCELLED


async def test_shutdown_interrupts_queued_tasks_without_running_them() -> None:
    """At shutdown, tasks still waiting in a queue are settled like other pending ones: INTERRUPTED
    (nothing durable here), never started during the drain."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1)}, shutdown_grace=5, config=False)
    gate = Gate()
    quick = tm.task(queue="q")(gate.note)
    async with tm.running():

        async def slow(label: str) -> None:
            gate.order.append(label)
            await anyio.sleep(0.2)  # still running when shutdown begins: drained

        running = await submit(tm, tm.task(queue="q", name="slow")(slow), "slow")
        await wait_until(lambda: gate.order == ["slow"])
        queued = [await submit(tm, quick, i) for i in range(3)]
    assert tm.get(running).status is TaskStatus.SUCCESS
    assert [tm.get(i).status for i in queued] == [TaskStatus.INTERRUPTED] * 3
    assert gate.order == ["slow"] and queue(tm)["pending"] == 0 and queue(tm)["running"] == 0


async def test_durable_queued_tasks_are_requeued_at_shutdown_and_run_at_the_next_start(
    tmp_path: Path,
) -> None:
    """A durable (persist=True) task waiting in its queue at shutdown is kept for the next start, which
    runs it through its queue."""
    db = str(tmp_path / "tasks.db")
    ran: list[int] = []

    def make() -> tuple[TaskManager, Any, Any]:
        tm = TaskManager(
            snapshot_backend=SqliteBackend(db),
            queues={"q": QueueConfig(concurrency=1)},
            config=False,
            shutdown_grace=0.05,
        )
        release = anyio.Event()

        @tm.task(queue="q", name="blocker")
        async def blocker() -> None:
            await release.wait()

        @tm.task(queue="q", persist=True, name="keep")
        async def keep(i: int) -> None:
            ran.append(i)

        return tm, blocker, keep

    tm, blocker, keep = make()
    async with tm.running():
        await submit(tm, blocker)
        await wait_until(lambda: queue(tm)["running"] == 1)
        kept = [await submit(tm, keep, i) for i in range(2)]
    assert ran == [] and [tm.get(i).status for i in kept] == [TaskStatus.PENDING] * 2
    tm2, _, _ = make()
    async with tm2.running():
        await wait_until(lambda: sorted(ran) == [0, 1])
        await wait_finished(tm2, kept)
    assert queue(tm2)["finished"] == 2


async def test_the_process_backlog_refuses_past_max_pending() -> None:
    """max_pending bounds the unfinished tasks of the process: past it add_task raises BacklogFull (a
    TaskRejected), the record is REJECTED, and room comes back as tasks finish."""
    tm = TaskManager(max_pending=3, config=False)
    gate = Gate()
    async with tm.running():
        held = [await submit(tm, gate.hold, i) for i in range(3)]
        with pytest.raises(BacklogFull) as refused:
            await submit(tm, gate.note, "over")
        assert isinstance(refused.value, TaskRejected)
        assert tm.get(refused.value.task_id).status is TaskStatus.REJECTED
        gate.release.set()
        await wait_finished(tm, held)
        after = await submit(tm, gate.note, "after")
        await wait_finished(tm, [after])
    assert "over" not in gate.order and gate.order[-1] == "after"


async def test_tasks_without_a_queue_go_to_a_declared_default_queue() -> None:
    """`max_size=` declares the 'default' queue: tasks naming no queue wait there and are refused past it."""
    tm = TaskManager(max_size=1, queues={"other": QueueConfig()}, config=False)
    gate = Gate()
    async with tm.running():
        await submit(tm, gate.hold, "a")
        assert queue(tm, "default")["pending"] + queue(tm, "default")["running"] == 1
        await submit(tm, gate.hold, "b")  # default has no concurrency limit: both run
        await wait_until(lambda: gate.running == 2)
        gate.release.set()
    assert [q["name"] for q in tm.queue_stats()] == ["default", "other"]
    assert queue(tm, "default")["max_size"] == 1


def test_unknown_queues_and_bad_settings_are_clear_errors() -> None:
    """An unknown queue: ConfigurationError at @task, ValueError at add_task, KeyError for
    update_queue_config; bad limits and priorities are refused, never silently ignored."""
    tm = TaskManager(queues={"q": QueueConfig()}, config=False)
    with pytest.raises(ConfigurationError, match="no queue named 'nope'"):
        tm.task(queue="nope")(lambda: None)
    with pytest.raises(ValueError, match="no queue named 'nope'"):
        ManagedBackgroundTasks(tm).add_task(print, queue="nope")
    with pytest.raises(KeyError):
        tm.update_queue_config("nope", concurrency=1)
    with pytest.raises(ConfigurationError):
        tm.update_queue_config("q", concurrency=0)
    with pytest.raises(TypeError):
        ManagedBackgroundTasks(tm).add_task(print, priority="high")
    with pytest.raises(ConfigurationError):
        tm.task(priority=1.5)(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no queue is declared"):
        ManagedBackgroundTasks(TaskManager(config=False)).add_task(print, queue="q")
    with pytest.raises(ConfigurationError, match="max_size must be a positive int"):
        QueueConfig(max_size=0)
    for bad in ({"q": {"concurrency": -1}}, {"q": {"size": 3}}, {"": QueueConfig()}, {"q": 3}):
        with pytest.raises(ConfigurationError):
            TaskManager(queues=bad, config=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        TaskManager(max_pending=0, config=False)
    with pytest.raises(ConfigurationError, match="declared too"):
        TaskManager(max_size=3, queues={"default": QueueConfig()}, config=False)


def test_queues_from_the_configuration_file_with_environment_overrides(tmp_path: Path) -> None:
    """[queues.<name>] declares a queue; TASKFLOW_QUEUE_<NAME>_<KEY> overrides one key (none: no limit);
    bad values name the file and the table."""
    path = tmp_path / "taskflow.toml"
    path.write_text("[queues.emails]\nconcurrency = 4\nmax_size = 1000\n[queues.bulk-export]\n")
    config = load_config(path, environ={"TASKFLOW_QUEUE_EMAILS_MAX_SIZE": "none",
                                        "TASKFLOW_QUEUE_BULK_EXPORT_CONCURRENCY": "2"})  # fmt: skip
    assert config.queues == {"emails": QueueConfig(4, None), "bulk-export": QueueConfig(concurrency=2)}
    tm = TaskManager(config=str(path))
    assert [(q["name"], q["concurrency"], q["max_size"]) for q in tm.queue_stats()] == [
        ("bulk-export", None, None), ("emails", 4, 1000),
    ]  # fmt: skip
    with pytest.raises(ConfigurationError, match="declared both"):
        TaskManager(config=str(path), queues={"emails": QueueConfig()})
    for text, message in [
        ("[queues.emails]\nconcurrency = 0\n", "[queues.emails] concurrency: must be a positive int"),
        ("[queues.emails]\nworkers = 2\n", "[queues.emails] workers: unknown key"),
        ("queues = 3\n", "[queues]: must be a table"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigurationError, match=rf"^{path}: .*") as info:
            load_config(path, environ={})
        assert message in str(info.value)
    path.write_text("[queues.emails]\n")
    with pytest.raises(ConfigurationError, match="TASKFLOW_QUEUE_OTHER_CONCURRENCY"):
        load_config(path, environ={"TASKFLOW_QUEUE_OTHER_CONCURRENCY": "2"})
    with pytest.raises(ConfigurationError, match="positive int"):
        load_config(path, environ={"TASKFLOW_QUEUE_EMAILS_CONCURRENCY": "lots"})


async def test_a_retried_task_waits_in_its_queue() -> None:
    """Retrying a failed task of a queue (the API's retry) puts the new run in that queue, under its limit."""
    tm = TaskManager(queues={"q": QueueConfig(concurrency=1)}, config=False)
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)

    @tm.task(queue="q", name="flaky")
    async def flaky() -> None:
        gate.order.append("flaky")
        if gate.order.count("flaky") == 1:
            raise RuntimeError("first run fails")

    async with tm.running():
        failed = await submit(tm, flaky)
        await wait_finished(tm, [failed])
        blocker = await submit(tm, hold, "blocker")
        await wait_until(lambda: gate.running == 1)
        retry = await tm.retry(failed)
        assert retry.status is TaskStatus.PENDING and queue(tm)["pending"] == 1
        gate.release.set()
        await wait_finished(tm, [blocker, retry.task_id])
    assert gate.order == ["flaky", "blocker", "flaky"] and retry.status is TaskStatus.SUCCESS


async def test_a_rejected_key_is_released_in_the_store_too(tmp_path: Path) -> None:
    """With a SQLite store, the REJECTED record is stored as such, and its key can be used again: the new
    task claims it in the store and runs."""
    tm = TaskManager(
        snapshot_backend=SqliteBackend(str(tmp_path / "t.db")),
        queues={"q": QueueConfig(concurrency=1, max_size=1)},
        config=False,
    )
    gate = Gate()
    hold = tm.task(queue="q")(gate.hold)
    note = tm.task(queue="q")(gate.note)
    async with tm.running():
        blocker = await submit(tm, hold, "blocker", idempotency_key="k")
        await wait_until(lambda: gate.running == 1)
        await submit(tm, note, "waiting")
        with pytest.raises(QueueFull) as refused:
            await submit(tm, note, "refused", idempotency_key="k2")
        gate.release.set()
        await wait_until(lambda: queue(tm)["pending"] == 0 and queue(tm)["running"] == 0)
        again = await submit(tm, note, "again", idempotency_key="k2")
        await wait_finished(tm, [blocker, again])
        stored = await tm.actions.persistence.store.get(refused.value.task_id)  # type: ignore[union-attr]
    assert stored is not None and stored.status is TaskStatus.REJECTED
    assert tm.get(again).status is TaskStatus.SUCCESS and gate.order[-1] == "again"
