"""Short task ids (logs, search) and what the figures count: the store, or this process (and saying so)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI

from taskflow import TaskAdmin, TaskManager, TaskStatus
from taskflow._metrics import TIMELINE_BUCKET, summary_figures
from taskflow._models import TaskRecord, new_task_id, short_id
from taskflow._table import Page, TaskTable
from taskflow.observers._events import LogEvent
from taskflow.observers._lines import format_log
from taskflow.stores import MemoryStore
from taskflow.stores._protocol import FinishedRun, StoreSummary
from tests.helpers import serve


def test_ids_made_together_have_different_short_ids_in_log_lines() -> None:
    """Two ids of one millisecond share their first 8 characters but not their short ids, nor log prefixes."""
    first, second = new_task_id(), new_task_id()
    assert first[:8] == second[:8] or first[:4] == second[:4]  # the time part (a boundary may fall between)
    assert short_id(first) == first[-8:] != short_id(second)
    lines = [format_log(LogEvent(t, "f", "m", "info", datetime(2026, 1, 1), 0)) for t in (first, second)]
    assert lines[0].startswith(f"[{first[-8:]}] ") and lines[1].startswith(f"[{second[-8:]}] ")


def test_table_search_matches_short_ids_and_full_prefixes() -> None:
    """TaskTable.query(task_id_search=) matches the start of the full id or of the short id."""
    table = TaskTable()
    ids = ["01a24db0-0000-7000-8000-00001234abcd", "01a24db0-0000-7000-8000-0000ffff5678"]
    for task_id in ids:
        table.add(TaskRecord(task_id=task_id, func_name="f", status=TaskStatus.PENDING))
    assert [r.task_id for r in table.query(task_id_search="1234").records] == [ids[0]]
    assert sorted(r.task_id for r in table.query(task_id_search="01a24db0").records) == ids
    assert table.query(task_id_search="abcd").records == []
    assert table.query(task_id_prefix="1234").records == []  # prefix semantics unchanged


async def test_search_endpoint_finds_a_task_by_its_short_id(tmp_path: Any) -> None:
    """`/dashboard/search?q=` finds a stored task by the short id the table shows."""
    app = FastAPI()
    manager = TaskManager(snapshot_db=str(tmp_path / "t.db"))
    TaskAdmin(app, manager)

    @manager.task()
    def work() -> None:
        pass

    async with serve(app) as client:
        ids = [manager.launcher.submit(work, (), {})[0] for _ in range(3)]
        for task_id in ids:
            found = (await client.get(f"/tasks/dashboard/search?q={short_id(task_id)[:6]}")).json()
            assert [t["task_id"] for t in found] == [task_id]


class OldStore:
    """A store written before `task_id_search` and `summary()`: MemoryStore's other methods only."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name == "summary":
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def query(self, *, task_id_prefix: str | None = None, **filters: Any) -> Page:
        return await self._inner.query(task_id_prefix=task_id_prefix, **filters)


async def test_a_store_without_the_new_methods_still_serves_search_and_labelled_metrics() -> None:
    """Without task_id_search the search falls back to full-id prefixes; without summary() the counts are
    the store's and the durations and charts say they are this process's."""
    app = FastAPI()
    manager = TaskManager(snapshot_backend=OldStore())  # type: ignore[arg-type]
    TaskAdmin(app, manager)

    @manager.task()
    def work() -> None:
        pass

    async with serve(app) as client:
        task_id = manager.launcher.submit(work, (), {})[0]
        found = (await client.get(f"/tasks/dashboard/search?q={task_id[:13]}")).json()
        assert [t["task_id"] for t in found] == [task_id]
        metrics = (await client.get("/tasks/metrics")).json()
        assert metrics["scope"] == {"counts": "store", "durations": "process"}
        assert metrics["total"] == 1 and "functions" not in metrics


async def test_metrics_without_a_store_say_they_count_this_process() -> None:
    """With no store, /tasks/metrics (and so the page) says its figures are this process's."""
    app = FastAPI()
    TaskAdmin(app, TaskManager())
    async with serve(app) as client:
        metrics = (await client.get("/tasks/metrics")).json()
    assert metrics["scope"] == {"counts": "process", "durations": "process"}


def test_summary_figures_count_every_record_and_time_the_latest_runs() -> None:
    """Counts sum every function; durations, throughput and the timeline come from the recent runs."""
    now = 1_000_000.0
    runs = [
        FinishedRun("a", TaskStatus.SUCCESS, now - 5, 1.0),
        FinishedRun("a", TaskStatus.FAILED, now - 15, 3.0),
        FinishedRun("b", TaskStatus.CANCELLED, now - 120, None),
    ]
    counts = {
        "a": {TaskStatus.SUCCESS: 7, TaskStatus.FAILED: 1},
        "b": {TaskStatus.CANCELLED: 1, TaskStatus.RUNNING: 1},
    }
    m = summary_figures(StoreSummary(counts, runs), now=now, sample=100)
    assert (m["total"], m["success"], m["failed"], m["running"], m["cancelled"]) == (10, 7, 1, 1, 1)
    assert m["success_rate"] == 0.7
    assert (m["avg_duration_seconds"], m["p50_duration_seconds"], m["p95_duration_seconds"]) == (
        2.0,
        2.0,
        3.0,
    )
    assert m["throughput_per_second"] == round(2 / 60, 3)
    assert m["functions"]["a"]["runs"] == 8 and m["functions"]["a"]["success_rate"] == 7 / 8
    assert m["functions"]["b"]["runs"] == 1 and m["functions"]["b"]["running"] == 1
    assert m["functions"]["b"]["p50_seconds"] is None
    series = m["timeline"]["series"]
    assert sum(b[1] + b[2] + b[3] for b in series) == 3 and all(b[0] % TIMELINE_BUCKET == 0 for b in series)
    assert m["timeline"]["complete"] is True
    assert summary_figures(StoreSummary(counts, runs[:2]), now=now, sample=2)["timeline"]["complete"] is False
