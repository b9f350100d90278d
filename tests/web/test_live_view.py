"""The live view across instances: a task that instance B runs appears in instance A's dashboard stream,
with B's instance id, on a shared Redis prefix and on a shared SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow.stores import RedisStore, SqliteStore, TaskStore
from tests.helpers import serve, wait_until
from tests.web.test_dashboard_bus import parse

pytestmark = pytest.mark.anyio


@contextmanager
def shared_store(kind: str, tmp_path: Path) -> Iterator[Any]:
    """A factory of handles onto one shared store: a fresh Redis prefix, or one SQLite file."""
    if kind == "redis":
        from tests.redis_service import REDIS_URL, redis_prefix

        with redis_prefix() as prefix:
            yield lambda: RedisStore(REDIS_URL, prefix=prefix)
    else:
        yield lambda: SqliteStore(tmp_path / "shared.db")


def instance(store: TaskStore) -> tuple[FastAPI, TaskManager, TaskAdmin]:
    """An app with the dashboard whose `POST /work` adds a task that waits a little."""
    manager = TaskManager(snapshot_backend=store, heartbeat_interval=0.2, heartbeat_ttl=5.0)
    app = FastAPI()
    admin = TaskAdmin(app, manager, auto_install=True)

    @manager.task()
    async def work() -> str:
        await anyio.sleep(0.2)
        return "done"

    @app.post("/work")
    async def add(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(work)}

    return app, manager, admin


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
async def test_a_task_run_on_b_appears_live_in_a_s_stream(
    anyio_backend: str, kind: str, tmp_path: Path
) -> None:
    """B's task goes out on A's stream as task events (its last one `success`), tagged with B's instance."""
    with shared_store(kind, tmp_path) as make:
        app_a, a, admin_a = instance(make())
        app_b, b, _ = instance(make())
        responses: list[httpx.Response] = []
        async with serve(app_a) as http_a, serve(app_b) as http_b:

            async def read() -> None:
                responses.append(await http_a.get("/tasks/dashboard/stream"))

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await wait_until(lambda: admin_a.bus.subscribers == 1)
                watcher = admin_a.bus.subscribe()
                seen: list[dict[str, Any]] = []
                task_id = (await http_b.post("/work")).json()["task_id"]

                def finished_on_a() -> bool:
                    seen.extend(e["data"] for e in parse(admin_a.bus.drain(watcher)) if e["event"] == "task")
                    return any(e["task_id"] == task_id and e["status"] == "success" for e in seen)

                await wait_until(finished_on_a, seconds=15)
                admin_a.bus.unsubscribe(watcher)
                await anyio.sleep(0.3)  # the stream's next flush
                admin_a.bus.close()
            b_instance = b.actions.persistence.instance_id
            assert a.statistics().total == 0  # A never ran it: it only streamed it
        (response,) = responses
        events = [e["data"] for e in parse(response.text) if e["event"] == "task"]
        mine = [e for e in events if e["task_id"] == task_id]
        assert mine and mine[-1]["status"] == "success"
        assert {e["instance"] for e in mine} == {b_instance}
