"""Prometheus metrics: `TaskflowCollector` in a registry of one's own, and the route under the admin path."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from taskflow import TaskAdmin, TaskManager, TaskStatus
from taskflow.metrics import TaskflowCollector
from taskflow.observers import InMemoryLogger, LogEvent
from tests.helpers import wait_finished
from tests.web.test_auth import login


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def make_manager(**options: Any) -> tuple[TaskManager, Any, Any]:
    tm = TaskManager(**options)
    calls: list[int] = []

    @tm.task(retries=1)
    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("once")

    @tm.task()
    def broken() -> None:
        raise RuntimeError("always")

    return tm, flaky, broken


async def test_the_collector_reports_tasks_attempts_durations_and_limiters(tmp_path: Any) -> None:
    """Counts by function and status, attempts, retries, the duration histogram, live tasks, limiters,
    store writes and observer counters, from a registry the user owns."""
    tm, flaky, broken = make_manager(snapshot_db=str(tmp_path / "t.db"), max_sync_threads=3)
    registry = CollectorRegistry()
    registry.register(TaskflowCollector(tm))
    async with tm.running():
        ids = [tm.launcher.submit(f, (), {})[0] for f in (flaky, broken)]
        for task_id in ids:
            await tm.launcher.start(task_id)
        records = await wait_finished(tm, ids)
        assert [r.status for r in records] == [TaskStatus.SUCCESS, TaskStatus.FAILED]
        with anyio.fail_after(10):
            while (stats := tm.store_statistics()) is None or stats.batches == 0 or stats.queued:
                await anyio.sleep(0.01)
        found = samples(generate_latest(registry).decode())
    assert found[("taskflow_tasks_finished_total", (("function", "flaky"), ("status", "success")))] == 1
    assert found[("taskflow_tasks_finished_total", (("function", "broken"), ("status", "failed")))] == 1
    assert found[("taskflow_task_attempts_total", (("function", "flaky"),))] == 2
    assert found[("taskflow_task_retries_total", (("function", "flaky"),))] == 1
    assert found[("taskflow_task_duration_seconds_count", (("function", "flaky"),))] == 1
    assert found[("taskflow_task_duration_seconds_bucket", (("function", "flaky"), ("le", "+Inf")))] == 1
    assert found[("taskflow_tasks", (("status", "pending"),))] == 0
    assert found[("taskflow_tasks", (("status", "running"),))] == 0
    threads = [k for k in found if k[0] == "taskflow_limiter_capacity" and ("kind", "threads") in k[1]]
    assert threads and all(found[k] == 3 for k in threads)
    assert found[("taskflow_store_write_duration_seconds_count", ())] >= 1
    assert found[("taskflow_store_write_duration_seconds_sum", ())] > 0
    assert found[("taskflow_store_write_failures_total", ())] == 0
    assert found[("taskflow_observer_events_dropped_total", ())] == 0


async def test_observer_drops_are_counted_in_the_metrics() -> None:
    """Events beyond the observer queue's bound are dropped, never block, and show in the drop counter."""
    tm = TaskManager(loggers=[InMemoryLogger()])
    registry = CollectorRegistry()
    registry.register(TaskflowCollector(tm))
    dispatcher = tm.launcher.dispatcher  # not running: nothing drains it
    limit = 100_000
    event = LogEvent("t", "f", "m", "info", __import__("datetime").datetime.now(), 0)
    for _ in range(limit + 5):
        dispatcher.emit_log(event)
    assert tm.observer_statistics().dropped == 5
    found = samples(generate_latest(registry).decode())
    assert found[("taskflow_observer_events_dropped_total", ())] == 5


@pytest.mark.parametrize("auth", [None, ("admin", "pw")])
async def test_the_route_serves_the_exposition_behind_the_admin_auth(auth: Any) -> None:
    """GET {path}/metrics/prometheus: text format, OpenMetrics when asked; 401 without a session."""
    app = FastAPI()
    tm, flaky, _ = make_manager()
    TaskAdmin(app, tm, auth=auth, secret_key="k" * 32)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            if auth is not None:
                assert (await client.get("/tasks/metrics/prometheus")).status_code == 401
                await login(client)
            task_id, _ = tm.launcher.submit(flaky, (), {})
            await tm.launcher.start(task_id)
            await wait_finished(tm, [task_id])
            plain = await client.get("/tasks/metrics/prometheus")
            assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
            key = ("taskflow_tasks_finished_total", (("function", "flaky"), ("status", "success")))
            assert samples(plain.text)[key] == 1
            openmetrics = await client.get(
                "/tasks/metrics/prometheus", headers={"accept": "application/openmetrics-text"}
            )
            assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
            assert openmetrics.text.rstrip().endswith("# EOF")
