"""`task_manager.store`: fastapi-taskflow 0.5.0's `TaskStore` methods over the runtime, minus 0.5.0's bugs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI

from taskflow import InMemoryLogger, InvalidTaskState, TaskAdmin, TaskManager, TaskRecord, TaskStatus
from taskflow._lifecycle import TaskChange
from taskflow._table import KEEP_UNPACKED
from taskflow.store import TaskStore
from taskflow.wrapper import ManagedBackgroundTasks
from tests.helpers import serve, wait_finished


async def test_a_050_script_using_task_manager_store() -> None:
    """0.5.0-style code: records read, seeded, failed and logged through `store`; the API and retry follow."""
    tm = TaskManager()
    app = FastAPI()
    TaskAdmin(app, tm)
    results: list[int] = []

    @tm.task()
    async def double(x: int) -> None:
        results.append(2 * x)

    @app.post("/double/{x}")
    async def route(x: int, tasks: ManagedBackgroundTasks = Depends(tm.get_tasks)) -> Any:  # noqa: B008
        return {"task_id": tasks.add_task(double, x, idempotency_key=f"double-{x}")}

    async with serve(app) as client:
        task_id = (await client.post("/double/5")).json()["task_id"]
        await wait_finished(tm, [task_id])
        store: TaskStore = tm.store
        assert store.get(task_id) is not None and store.get(task_id).status is TaskStatus.SUCCESS  # type: ignore[union-attr]
        assert task_id in {r.task_id for r in store.list()}
        assert store.find_by_idempotency_key("double-5").task_id == task_id  # type: ignore[union-attr]

        seeded = store.create("seed-1", "double", (21,), {}, tags={"origin": "import"})
        assert isinstance(seeded, TaskRecord) and seeded.status is TaskStatus.PENDING
        assert (await client.get("/tasks/seed-1")).json()["status"] == "pending"
        naive_now = datetime.utcnow()  # what 0.5.0 code passes
        updated = store.update(
            "seed-1", status=TaskStatus.FAILED, error="boom", start_time=naive_now,
            end_time=naive_now + timedelta(seconds=2),
        )  # fmt: skip
        assert updated is seeded and updated.duration == 2.0
        store.append_log("seed-1", "imported from the old system")
        detail = (await client.get("/tasks/seed-1")).json()
        assert detail["status"] == "failed" and detail["error"] == "boom"
        assert detail["logs"] == ["imported from the old system"] and detail["tags"] == {"origin": "import"}
        assert (await client.get("/tasks/metrics")).json()["failed"] == 1

        retried = (await client.post("/tasks/seed-1/retry")).json()["task_id"]
        await wait_finished(tm, [retried])
    assert sorted(results) == [10, 42]


class _Collect:
    """A sink that collects the ids of the changed tasks."""

    def __init__(self, into: list[str]) -> None:
        self.into = into

    def take(self, changes: Sequence[TaskChange]) -> None:
        self.into.extend(change.task_id for change in changes)


async def test_status_changes_go_through_the_runtime() -> None:
    """A status set with `update` moves the counters and statistics and reaches observers and listeners."""
    memory = InMemoryLogger()
    tm = TaskManager(loggers=[memory])
    changed: list[str] = []
    tm.listeners.add(_Collect(changed))
    async with tm.running():
        tm.store.create("t1", "job", (), {})
        tm.store.update("t1", status="failed", error="lost in import")  # the value, as 0.5.0 accepted
        await tm.flush_observers()
        assert tm.table.counts()[TaskStatus.FAILED] == 1 and tm.table.counts()[TaskStatus.PENDING] == 0
        assert tm.statistics().failed == 1
        (event,) = [e for e in memory.lifecycle_events if e.task_id == "t1"]
        assert event.status is TaskStatus.FAILED and event.error == "lost in import"
    assert changed.count("t1") == 2  # created, then failed


def test_update_refuses_changes_that_would_corrupt_state() -> None:
    """Unknown fields, `created_at`, bad statuses and a duplicate id raise instead of corrupting records."""
    tm = TaskManager()
    tm.store.create("t1", "job", (), {})
    with pytest.raises(TypeError, match="no field"):
        tm.store.update("t1", colour="red")
    with pytest.raises(TypeError, match="cannot be changed"):
        tm.store.update("t1", created_at=datetime.utcnow())
    with pytest.raises(ValueError, match="exploded"):
        tm.store.update("t1", status="exploded")
    with pytest.raises(ValueError, match="already exists"):
        tm.store.create("t1", "job", (), {})
    assert tm.store.update("unknown", error="x") is None
    tm.store.append_log("unknown", "ignored, as in 0.5.0")
    assert tm.store.get("t1").status is TaskStatus.PENDING and len(tm.store.list()) == 1  # type: ignore[union-attr]


async def test_a_task_taskflow_runs_is_not_finished_by_hand() -> None:
    """`update(status=...)` of a pending task from `add_task` is refused (cancel it); other fields change."""
    tm = TaskManager()

    @tm.task()
    async def job() -> None:
        pass

    task_id, _ = tm.launcher.submit(job, (), {})
    with pytest.raises(InvalidTaskState, match="cancel"):
        tm.store.update(task_id, status=TaskStatus.SUCCESS)
    tm.store.update(task_id, tags={"checked": "yes"})
    await tm.launcher.start(task_id)  # runs inline: no lifespan
    (record,) = await wait_finished(tm, [task_id])
    assert record.status is TaskStatus.SUCCESS and record.tags == {"checked": "yes"}
    with pytest.raises(InvalidTaskState, match="finished one stays finished"):
        tm.store.update(task_id, status=TaskStatus.FAILED)  # a finished task stays finished
    assert tm.table.counts()[TaskStatus.FAILED] == 0 and tm.table.counts()[TaskStatus.SUCCESS] == 1


def test_an_archived_record_is_read_only() -> None:
    """Changing a packed (archived) finished record raises instead of being silently lost."""
    tm = TaskManager(max_terminal_records=None)
    for n in range(KEEP_UNPACKED + 1):
        tm.store.create(f"t{n}", "job", (), {})
        tm.store.update(f"t{n}", status=TaskStatus.SUCCESS)
    with pytest.raises(InvalidTaskState, match="archived"):
        tm.store.update("t0", error="late")
    with pytest.raises(InvalidTaskState, match="archived"):
        tm.store.append_log("t0", "late")
    tm.store.update(f"t{KEEP_UNPACKED}", error="recent ones still change")
    assert tm.store.get(f"t{KEEP_UNPACKED}").error == "recent ones still change"  # type: ignore[union-attr]


def test_restore_keeps_the_live_record_and_clear_keeps_unfinished_ones() -> None:
    """`restore` never overwrites a record in memory; `clear` forgets finished records only."""
    tm = TaskManager()
    live = tm.store.create("t1", "job", (), {})
    tm.store.restore(TaskRecord(task_id="t1", func_name="job", status=TaskStatus.SUCCESS))
    tm.store.restore(TaskRecord(task_id="old", func_name="job", status=TaskStatus.SUCCESS))
    assert tm.store.get("t1") is live and tm.store.get("old").status is TaskStatus.SUCCESS  # type: ignore[union-attr]
    tm.store.clear()
    assert [r.task_id for r in tm.store.list()] == ["t1"]
    with pytest.raises(TypeError):
        tm.store.restore({"task_id": "x"})  # type: ignore[arg-type]


def test_idempotency_lookup_skips_tasks_that_released_their_key() -> None:
    """`find_by_idempotency_key` returns the holder, and None once it failed (the key is free again)."""
    tm = TaskManager()
    tm.store.create("t1", "job", (), {}, idempotency_key="k")
    assert tm.store.find_by_idempotency_key("k").task_id == "t1"  # type: ignore[union-attr]
    tm.store.update("t1", status=TaskStatus.FAILED)
    assert tm.store.find_by_idempotency_key("k") is None


def test_dashboard_subscriber_queues_point_to_observers() -> None:
    """0.5.0's SSE queue methods are not provided, with an error naming the replacement."""
    tm = TaskManager()
    with pytest.raises(NotImplementedError, match="TaskObserver"):
        tm.store.add_subscriber()
    with pytest.raises(NotImplementedError, match="TaskObserver"):
        tm.store.remove_subscriber(object())


async def test_records_written_through_store_are_persisted(tmp_path: Path) -> None:
    """A record created and failed through `store` reaches the SQLite store and is found after a restart."""
    db = str(tmp_path / "tasks.db")
    tm = TaskManager(snapshot_db=db)
    async with tm.running():
        tm.store.create("seed-1", "job", (1,), {})
        tm.store.update("seed-1", status=TaskStatus.FAILED, error="boom")
    again = TaskManager(snapshot_db=db)
    async with again.running():
        record = await again.find("seed-1")
    assert record.status is TaskStatus.FAILED and record.error == "boom" and record.args == (1,)
