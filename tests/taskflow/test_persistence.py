"""Durability in the runtime: commit before the response, recovery, takeover, idempotency, failures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, TaskRecord, TaskStatus
from taskflow._persistence import Persistence
from taskflow.backends import SqliteBackend
from taskflow.stores import MemoryStore, SqliteStore
from tests.helpers import serve, wait_finished, wait_until


class GatedStore(MemoryStore):
    """A memory store whose writes wait for `gate`, and can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = anyio.Event()
        self.failures_left = 0
        self.attempts = 0

    async def write(
        self, records: Sequence[TaskRecord], *, owner: str, requeue_ids: frozenset[str] = frozenset()
    ) -> None:
        self.attempts += 1
        await self.gate.wait()
        if self.failures_left:
            self.failures_left -= 1
            raise OSError("disk full")
        await super().write(records, owner=owner, requeue_ids=requeue_ids)


def app_with(tm: TaskManager, ran: list[Any]) -> FastAPI:
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=True)

    @tm.task(persist=True)
    async def durable(n: int) -> None:
        ran.append(n)

    @app.post("/add/{n}")
    async def add(n: int, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(durable, n)}

    return app


async def test_persisted_task_is_committed_before_the_response_is_sent() -> None:
    """The response carrying a persist=True task's id waits until the store committed that task."""
    store = GatedStore()
    tm = TaskManager(snapshot_backend=store)
    ran: list[int] = []
    app = app_with(tm, ran)
    responses: list[httpx.Response] = []
    async with serve(app) as client:
        store.gate.set()  # let startup writes through, then hold the next ones
        await wait_until(lambda: tm.launcher.is_persistent)
        store.gate = anyio.Event()

        async def request() -> None:
            responses.append(await client.post("/add/1"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(request)
            await wait_until(lambda: store.attempts >= 1)
            await anyio.wait_all_tasks_blocked()
            assert responses == []  # blocked on the commit
            assert sum((await store.counts()).values()) == 0
            store.gate.set()
        task_id = responses[0].json()["task_id"]
        assert (await store.get(task_id)) is not None
        await wait_finished(tm, [task_id])
    assert ran == [1]


async def test_store_that_cannot_commit_refuses_the_task_with_503() -> None:
    """If the store cannot confirm within durable_timeout, the client gets a 503 and the task never runs."""
    store = GatedStore()
    tm = TaskManager(snapshot_backend=store, durable_timeout=0.2)
    ran: list[int] = []
    app = app_with(tm, ran)
    async with serve(app) as client:
        store.gate.set()
        await wait_until(lambda: tm.launcher.is_persistent)
        store.gate = anyio.Event()  # writes now hang
        response = await client.post("/add/5")
        assert response.status_code == 503 and "not accepted" in response.json()["detail"]
        refused = [r for r in tm.table.records() if r.status is TaskStatus.CANCELLED]
        assert [r.status_reason for r in refused] == ["store_unavailable"]
        store.gate.set()
    assert ran == []


async def test_failing_writes_are_retried_and_reported_in_metrics() -> None:
    """A store that fails (disk full) is retried with backoff; tasks still run; metrics show the failures."""
    store = GatedStore()
    store.gate.set()
    tm = TaskManager(snapshot_backend=store)
    ran: list[int] = []
    app = app_with(tm, ran)
    async with serve(app) as client:
        await wait_until(lambda: tm.launcher.is_persistent)
        store.failures_left = 3
        task_id = (await client.post("/add/2")).json()["task_id"]
        await wait_finished(tm, [task_id])
        metrics = (await client.get("/tasks/metrics")).json()
        stored = await store.get(task_id)
    assert ran == [2]
    assert metrics["store"]["failures"] == 3 and metrics["store"]["last_error"] is not None
    assert stored is not None and stored.status is TaskStatus.SUCCESS


async def test_unstorable_arguments_raise_type_error_naming_the_argument(tmp_path: Path) -> None:
    """With a store, add_task refuses arguments that cannot be stored as JSON, naming the argument."""
    tm = TaskManager(snapshot_db=str(tmp_path / "t.db"))

    @tm.task(persist=True)
    async def job(conn: object) -> None:
        pass

    async with tm.running():
        with pytest.raises(TypeError, match="conn"):
            tm.launcher.submit(job, (), {"conn": object()})


async def test_clean_restart_requeues_and_runs_pending_and_requeueable_tasks(tmp_path: Path) -> None:
    """Shutdown keeps durable pending and requeue_on_interrupt tasks for the next start."""
    db = str(tmp_path / "tasks.db")
    runs: dict[str, int] = {"requeue": 0, "plain": 0, "queued": 0}

    def make(release: anyio.Event | None) -> TaskManager:
        tm = TaskManager(snapshot_db=db, shutdown_grace=0, max_concurrent_tasks=2)

        @tm.task(persist=True, requeue_on_interrupt=True)
        async def requeue() -> None:
            runs["requeue"] += 1
            if release is not None:
                await release.wait()

        @tm.task(persist=True)
        async def plain() -> None:
            runs["plain"] += 1
            if release is not None:
                await release.wait()

        @tm.task(persist=True)
        async def queued() -> None:
            runs["queued"] += 1

        tm.requeue_fn, tm.plain_fn, tm.queued_fn = requeue, plain, queued  # type: ignore[attr-defined]
        return tm

    first = make(anyio.Event())
    async with first.running():
        ids = {}
        for name in ("requeue", "plain"):
            ids[name], _ = first.launcher.submit(getattr(first, f"{name}_fn"), (), {})
            await first.launcher.start(ids[name])
        await wait_until(lambda: runs["requeue"] == 1 and runs["plain"] == 1)
        ids["queued"], _ = first.launcher.submit(first.queued_fn, (), {})  # type: ignore[attr-defined]
        await first.launcher.start(ids["queued"])  # both slots are taken: it waits
    assert first.get(ids["plain"]).status is TaskStatus.INTERRUPTED
    assert first.get(ids["requeue"]).status is TaskStatus.PENDING  # kept for the next start
    assert first.get(ids["queued"]).status is TaskStatus.PENDING  # never got a slot: kept too

    second = make(None)
    async with second.running():
        records = await wait_finished(second, [ids["requeue"], ids["queued"]])
        plain = await second.actions.find(ids["plain"])
    assert [r.status for r in records] == [TaskStatus.SUCCESS, TaskStatus.SUCCESS]
    assert runs == {"requeue": 2, "plain": 1, "queued": 1}
    assert plain.status is TaskStatus.INTERRUPTED


async def seed_orphans(db: str, n: int, *, status: TaskStatus, requeue: bool, func_name: str) -> list[str]:
    """Write records owned by an instance that never heartbeats (as if it was killed)."""
    store = SqliteStore(db)
    await store.open()
    records = [
        TaskRecord(f"orphan-{i}", func_name, status, args=(i,), created_at=dt.datetime.now(dt.UTC))
        for i in range(n)
    ]
    await store.write(
        records,
        owner="dead-instance",
        requeue_ids=frozenset(r.task_id for r in records) if requeue else frozenset(),
    )
    await store.close()
    return [r.task_id for r in records]


async def test_tasks_of_a_lost_instance_run_exactly_once_across_two_survivors(tmp_path: Path) -> None:
    """Two live instances on one file take over a dead one's pending tasks: each runs exactly once."""
    db = str(tmp_path / "tasks.db")
    ids = await seed_orphans(db, 40, status=TaskStatus.PENDING, requeue=True, func_name="work")
    runs: list[int] = []

    def make() -> TaskManager:
        tm = TaskManager(snapshot_db=db, heartbeat_interval=0.05, heartbeat_ttl=0.5)

        @tm.task(name="work", persist=True)
        async def work(i: int) -> None:
            runs.append(i)

        return tm

    a, b = make(), make()
    async with a.running(), b.running():
        await wait_until(lambda: len(runs) >= 40, seconds=20)
        await anyio.sleep(0.2)  # a few more heartbeats: nothing may run twice
    assert sorted(runs) == list(range(40))
    owners = [m for m in (a, b) for i in ids if m.table.get(i) is not None]
    assert len(owners) == 40


async def test_running_tasks_of_a_lost_instance_are_interrupted_or_requeued(tmp_path: Path) -> None:
    """A RUNNING orphan becomes INTERRUPTED with a reason, unless it is requeue_on_interrupt (then re-run)."""
    db = str(tmp_path / "tasks.db")
    plain_ids = await seed_orphans(db, 2, status=TaskStatus.RUNNING, requeue=False, func_name="work")
    runs: list[int] = []
    tm = TaskManager(snapshot_db=db, heartbeat_interval=0.05, heartbeat_ttl=0.5)

    @tm.task(name="work")
    async def work(i: int) -> None:
        runs.append(i)

    async with tm.running():
        records = [await tm.actions.find(i) for i in plain_ids]
    assert runs == [] and all(r.status is TaskStatus.INTERRUPTED for r in records)
    assert all("was lost while it ran" in (r.status_reason or "") for r in records)


async def test_idempotency_key_holds_across_instances_sharing_a_store(tmp_path: Path) -> None:
    """A key held on one instance makes the same key on another a duplicate that never runs."""
    db = str(tmp_path / "tasks.db")
    runs: list[str] = []

    def make(label: str) -> TaskManager:
        tm = TaskManager(snapshot_db=db)

        @tm.task(name="charge")
        async def charge() -> None:
            runs.append(label)

        tm.charge_fn = charge  # type: ignore[attr-defined]
        return tm

    a, b = make("a"), make("b")
    async with a.running(), b.running():
        first, _ = a.launcher.submit(a.charge_fn, (), {}, idempotency_key="order-1")  # type: ignore[attr-defined]
        await a.launcher.start(first)
        await wait_finished(a, [first])
        second, _ = b.launcher.submit(b.charge_fn, (), {}, idempotency_key="order-1")  # type: ignore[attr-defined]
        await b.launcher.start(second)
        (dup,) = await wait_finished(b, [second])
    assert runs == ["a"] and dup.status is TaskStatus.CANCELLED and first in (dup.status_reason or "")


async def test_history_beyond_the_memory_cap_is_read_from_the_store(tmp_path: Path) -> None:
    """Evicted records are still found by id and listed, from the store, with filters and paging."""
    tm = TaskManager(snapshot_db=str(tmp_path / "t.db"), max_terminal_records=3)
    ran: list[int] = []
    app = app_with(tm, ran)
    async with serve(app) as client:
        ids = [(await client.post(f"/add/{i}")).json()["task_id"] for i in range(10)]
        await wait_until(lambda: len(ran) == 10)
        await wait_until(lambda: tm.statistics().success == 10)
        assert len(tm.table) == 3
        old = await client.get(f"/tasks/{ids[0]}")
        page1 = await client.get("/tasks", params={"limit": 6, "status": "success"})
        page2 = await client.get("/tasks", params={"limit": 6, "cursor": page1.headers["x-next-cursor"]})
        metrics = (await client.get("/tasks/metrics")).json()
    assert old.status_code == 200 and old.json()["status"] == "success"
    listed = [t["task_id"] for t in page1.json() + page2.json()]
    assert sorted(listed) == sorted(ids) and len(page2.json()) == 4
    assert metrics["total"] == 10 and metrics["success"] == 10


async def test_snapshot_backend_compatibility_name(tmp_path: Path) -> None:
    """TaskManager(snapshot_backend=SqliteBackend(path)) persists like snapshot_db does."""
    backend = SqliteBackend(str(tmp_path / "compat.db"))
    tm = TaskManager(snapshot_backend=backend, requeue_pending=True)

    async def plain() -> None:
        pass

    async with tm.running():
        task_id, _ = tm.launcher.submit(plain, (), {})
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
    reopened = SqliteStore(str(tmp_path / "compat.db"))
    await reopened.open()
    stored = await reopened.get(task_id)
    await reopened.close()
    assert stored is not None and stored.status is TaskStatus.SUCCESS


async def test_idempotency_key_used_before_a_restart_returns_the_original_id(tmp_path: Path) -> None:
    """After a restart on the same file, add_task with a key used before returns the original task id."""
    db = str(tmp_path / "tasks.db")

    def make() -> TaskManager:
        tm = TaskManager(snapshot_db=db)

        @tm.task(name="notify")
        async def notify() -> None:
            pass

        tm.notify_fn = notify  # type: ignore[attr-defined]
        return tm

    first = make()
    async with first.running():
        original, _ = first.launcher.submit(first.notify_fn, (), {}, idempotency_key="order-9")  # type: ignore[attr-defined]
        await first.launcher.start(original)
        await wait_finished(first, [original])
    second = make()
    async with second.running():
        again, created = second.launcher.submit(second.notify_fn, (), {}, idempotency_key="order-9")  # type: ignore[attr-defined]
    assert again == original and not created


async def test_evicted_succeeded_task_keeps_its_idempotency_key() -> None:
    """A succeeded task evicted from memory still holds its key (SUCCESS is final)."""
    tm = TaskManager(max_terminal_records=1)

    async def job() -> None:
        pass

    async with tm.running():
        first, _ = tm.launcher.submit(job, (), {}, idempotency_key="k")
        await tm.launcher.start(first)
        await wait_finished(tm, [first])
        other, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(other)
        await wait_finished(tm, [other])
        assert tm.table.get(first) is None  # evicted
        assert tm.launcher.submit(job, (), {}, idempotency_key="k") == (first, False)


async def test_shutdown_with_requeue_pending_and_a_running_task_never_raises(tmp_path: Path) -> None:
    """fastapi-taskflow 0.5.0 crashed here (naive vs aware datetimes); taskflow interrupts and moves on."""
    tm = TaskManager(snapshot_db=str(tmp_path / "t.db"), requeue_pending=True, shutdown_grace=0)
    started = anyio.Event()

    @tm.task()
    async def long_job() -> None:
        started.set()
        await anyio.sleep(60)

    async with tm.running():
        task_id, _ = tm.launcher.submit(long_job, (), {})
        await tm.launcher.start(task_id)
        await started.wait()
    record = tm.get(task_id)
    assert record.status is TaskStatus.INTERRUPTED and record.end_time is not None
    assert record.end_time.tzinfo is not None and record.status_reason == "shutdown"


async def test_store_failures_and_recovery_reach_the_observers() -> None:
    """Failing writes are reported to observers (pseudo-task `taskflow.store`), and so is the recovery."""
    from taskflow import InMemoryLogger

    store = GatedStore()
    store.gate.set()
    memory = InMemoryLogger()
    tm = TaskManager(snapshot_backend=store, loggers=[memory], heartbeat_interval=0.02, heartbeat_ttl=1)

    async def job() -> None:
        pass

    async with tm.running():
        store.failures_left = 1_000_000  # the disk is full until further notice
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        await wait_until(lambda: any(e.func_name == "taskflow.store" for e in memory.log_events))
        store.failures_left = 0
        await wait_until(lambda: any("recovered" in e.message for e in memory.log_events))
        await wait_finished(tm, [task_id])
    reports = [(e.level, e.message) for e in memory.log_events if e.func_name == "taskflow.store"]
    assert reports[0][0] == "error" and "failing" in reports[0][1] and "OSError" in reports[0][1]
    assert reports[-1][0] == "info" and "recovered" in reports[-1][1]


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_durable_task_runs_only_once_its_running_state_is_committed(kind: str) -> None:
    """A persist=True task's body waits for RUNNING to be durable, so a crash cannot make it run twice."""
    from taskflow import get_task_context

    store = GatedStore()
    store.gate.set()
    tm = TaskManager(snapshot_backend=store)
    seen: list[TaskStatus] = []

    def stored_status() -> TaskStatus:
        ctx = get_task_context()
        assert ctx is not None
        entry = store._entries[ctx.task_id]
        return entry.record.status

    if kind == "async":

        @tm.task(persist=True)
        async def job() -> None:
            seen.append(stored_status())
    else:

        @tm.task(persist=True)
        def job() -> None:
            seen.append(stored_status())

    async with tm.running():
        store.gate = anyio.Event()  # writes hang from now on
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        await wait_until(lambda: tm.get(task_id).status is TaskStatus.RUNNING)
        await anyio.wait_all_tasks_blocked()
        assert seen == []  # not started: RUNNING is not durable yet
        store.gate.set()
        await wait_finished(tm, [task_id])
    assert seen == [TaskStatus.RUNNING]


@pytest.mark.anyio
async def test_make_durable_waits_for_queued_records_and_saves_the_others() -> None:
    """Records still queued are committed in their batch (written once); records never queued, or whose
    batch already went, are saved again in their current state before make_durable returns True."""
    store = MemoryStore()
    persistence = Persistence(
        store, heartbeat_interval=60, heartbeat_ttl=60, retention_days=None, durable_timeout=5
    )
    queued, unsaved, gone = (TaskRecord(task_id, "job", TaskStatus.PENDING) for task_id in ("q", "u", "g"))
    async with anyio.create_task_group() as tg:
        await persistence.start(tg)
        writer = persistence.writer
        assert writer is not None
        persistence.save(gone, requeue=True)
        await persistence.sync()
        gone.status = TaskStatus.RUNNING  # changed since its batch committed, and not saved since
        persistence.save(queued, requeue=True)
        assert await persistence.make_durable([queued, unsaved, gone], lambda record: True)
        assert writer.statistics().records_written == 4  # gone twice, queued once, unsaved once
        assert [(await store.get(r.task_id)) == r for r in (queued, unsaved, gone)] == [True] * 3
        await persistence.close()
        tg.cancel_scope.cancel()
    await persistence.close_store()
