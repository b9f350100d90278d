"""A Redis store that stops answering mid-run, paused (CLIENT PAUSE) or killed (`kill -9`) and restarted:
the app keeps serving, task routes answer 503 (never 500), nothing is lost or left PENDING.

Each test runs its own redis-server on a free port: pausing or killing the shared one would stall every
other test using it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, TaskStatus
from taskflow.stores import RedisStore
from tests.helpers import serve, wait_until
from tests.redis_service import OwnRedis, client, own_redis

pytestmark = [pytest.mark.anyio, pytest.mark.services]

PAUSE_MS = 6000


def outage_app(url: str) -> tuple[FastAPI, TaskManager]:
    """An app on a Redis store with short timeouts: 1 s socket timeout, 1 s durable timeout."""
    manager = TaskManager(
        snapshot_backend=RedisStore(url, prefix="outage", socket_timeout=1.0, socket_connect_timeout=1.0),
        durable_timeout=1.0,
        heartbeat_interval=0.2,
        heartbeat_ttl=30.0,
    )
    app = FastAPI()
    TaskAdmin(app, manager, auto_install=True)

    @manager.task()
    async def quick(n: int) -> int:
        return n

    @manager.task(persist=True)
    async def durable(n: int) -> int:
        return n

    @app.post("/quick")
    async def add_quick(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(quick, 1)}

    @app.post("/durable")
    async def add_durable(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(durable, 1)}

    return app, manager


async def ride_out(server: OwnRedis, break_it: Callable[[], None], mend_it: Callable[[], None]) -> None:
    """Serve through an outage of `server`: the answers during it, then nothing PENDING and nothing lost."""
    app, manager = outage_app(server.url)
    async with serve(app) as http:
        accepted = [(await http.post("/quick")).json()["task_id"] for _ in range(5)]
        accepted.append((await http.post("/durable")).json()["task_id"])
        break_it()
        answers: dict[str, httpx.Response] = {}

        async def ask(name: str, method: str, path: str) -> None:
            answers[name] = await http.request(method, path)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, "metrics", "GET", "/tasks/metrics")
            tg.start_soon(ask, "list", "GET", "/tasks")
            tg.start_soon(ask, "unknown", "GET", "/tasks/0190a1b2-0000-7000-8000-000000000000")
            tg.start_soon(ask, "durable", "POST", "/durable")
            for n in range(20):
                tg.start_soon(ask, f"quick{n}", "POST", "/quick")
        assert answers["metrics"].status_code == 200
        assert answers["metrics"].json()["store"]["available"] is False
        for name in ("list", "unknown", "durable"):
            assert answers[name].status_code == 503, (name, answers[name].text)
        assert "unavailable" in answers["list"].json()["detail"]
        refused = manager.query(statuses=frozenset({TaskStatus.CANCELLED})).records
        assert [r.status_reason for r in refused] == ["store_unavailable"]
        accepted += [answers[f"quick{n}"].json()["task_id"] for n in range(20)]
        failed = manager.query(statuses=frozenset({TaskStatus.FAILED})).records
        assert failed == [], [(r.func_name, r.error, r.stacktrace) for r in failed]
        mend_it()
        # After the outage: the buffered writes go in, with their final states.
        await wait_until(lambda: manager.actions.persistence.statistics().queued == 0, seconds=30)
        store = manager.actions.persistence.store
        with anyio.fail_after(30):  # the last states may still be on their way: bounded, never stuck
            while (counts := await store.counts())[TaskStatus.PENDING] + counts[TaskStatus.RUNNING]:
                await anyio.sleep(0.05)
        for task_id in accepted:
            stored = await store.get(task_id)
            assert stored is not None and stored.status is TaskStatus.SUCCESS, task_id
        assert (await http.get("/tasks/metrics")).json()["store"]["available"] is True
        assert (await http.post("/durable")).status_code == 200  # durable tasks are accepted again


async def test_paused_redis_keeps_serving_and_loses_nothing(anyio_backend: str, tmp_path: Path) -> None:
    """Redis paused: 503s that say so (200 for metrics), never a 500; afterwards nothing PENDING or lost."""
    with own_redis(tmp_path) as server:

        def pause() -> None:
            with client(server.url) as admin:
                admin.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")

        def unpause() -> None:
            with client(server.url) as admin:
                admin.execute_command("CLIENT", "UNPAUSE")

        await ride_out(server, pause, unpause)


async def test_killed_redis_keeps_serving_and_loses_nothing(anyio_backend: str, tmp_path: Path) -> None:
    """Redis killed (-9) and restarted: 503s meanwhile, never a 500; afterwards nothing PENDING or lost."""
    with own_redis(tmp_path) as server:
        await ride_out(server, server.kill, server.start)
