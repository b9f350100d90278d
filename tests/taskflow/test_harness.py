"""`taskflow.testing` for users' tasks: a fake clock, running until idle, recording changes; with TestClient,
httpx's ASGI transport, and trio's autojump clock."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
import trio.testing
from asgi_lifespan import LifespanManager
from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient

from supervisors.testing import FakeClock
from taskflow import TaskAdmin, TaskManager, TaskStatus
from taskflow.testing import TaskRecorder, run_until_idle, wait_until_idle

S = TaskStatus


def _app(clock: FakeClock) -> tuple[FastAPI, TaskManager]:
    config = {"policies": {"mail": {"retries": 3, "delay": 30, "backoff": 2}}}
    manager = TaskManager(clock=clock, config=config)
    calls: list[str] = []

    @manager.task(policy="mail")
    async def send(to: str) -> None:
        calls.append(to)
        if len(calls) < 3:
            raise ConnectionError("smtp down")

    app = FastAPI()
    TaskAdmin(app, manager, auto_install=True)

    @app.post("/send")
    async def route(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(send, "a@example.com")}

    return app, manager


async def test_fake_clock_runs_backoff_without_waiting() -> None:
    """With a FakeClock, a task retried with 30 s and 60 s waits finishes at once; the waits are recorded."""
    clock = FakeClock()
    _, manager = _app(clock)
    with TaskRecorder(manager) as recorder:
        async with manager.running():
            task_id, _ = manager.launcher.submit(manager.registry.get("send").func, ("x",), {})
            await manager.launcher.start(task_id)
            await run_until_idle(manager)
    assert clock.sleeps == [30.0, 60.0]
    assert recorder.statuses(task_id) == [S.PENDING, S.RUNNING, S.SUCCESS]
    (record,) = recorder.records("send")
    assert (record.retries_used, len(record.attempts)) == (2, 3)


async def test_with_httpx_asgi_transport() -> None:
    """The helpers work with the app served in process through httpx's ASGI transport."""
    clock = FakeClock()
    app, manager = _app(clock)
    async with LifespanManager(app) as lifespan:
        transport = httpx.ASGITransport(app=lifespan.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            with TaskRecorder(manager) as recorder:
                task_id = (await client.post("/send")).json()["task_id"]
                await run_until_idle(manager)
            detail = (await client.get(f"/tasks/{task_id}")).json()
    assert detail["status"] == "success" and detail["retries_used"] == 2
    assert recorder.statuses(task_id) == [S.PENDING, S.RUNNING, S.SUCCESS]
    assert clock.sleeps == [30.0, 60.0]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_with_fastapi_test_client(backend: str) -> None:
    """The sync helper waits for tasks of an app run by FastAPI's TestClient, on both backends."""
    clock = FakeClock()
    app, manager = _app(clock)
    with TestClient(app, backend=backend) as client, TaskRecorder(manager) as recorder:
        task_id = client.post("/send").json()["task_id"]
        wait_until_idle(manager)
        assert client.get(f"/tasks/{task_id}").json()["status"] == "success"
    assert [c.status for c in recorder.changes if c.kind == "moved"] == [S.RUNNING, S.SUCCESS]


async def test_run_until_idle_gives_up_on_a_task_that_never_ends() -> None:
    """A task that never ends makes run_until_idle raise TimeoutError instead of hanging the test."""
    manager = TaskManager(shutdown_grace=0)

    @manager.task()
    async def forever() -> None:
        await anyio.sleep_forever()

    async with manager.running():
        task_id, _ = manager.launcher.submit(forever, (), {})
        await manager.launcher.start(task_id)
        with pytest.raises(TimeoutError):
            await run_until_idle(manager, seconds=0.05)


# trio with its autojump clock: every sleep jumps virtual time as soon as all tasks are blocked. anyio's
# pytest plugin passes the options to trio.run, so pytest-trio is not needed for this.
AUTOJUMP = ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.mark.parametrize("anyio_backend", [pytest.param(AUTOJUMP, id="trio-autojump")])
async def test_trio_autojump_clock_skips_real_backoff(anyio_backend: Any) -> None:
    """Under trio's autojump clock, hour-long backoff waits on the system clock pass in virtual time."""
    manager = TaskManager(config={"policies": {"slow": {"retries": 2, "delay": 3600}}})
    calls: list[float] = []

    @manager.task(policy="slow")
    async def job() -> None:
        calls.append(trio.current_time())
        if len(calls) < 3:
            raise RuntimeError("later")

    async with manager.running():
        task_id, _ = manager.launcher.submit(job, (), {})
        await manager.launcher.start(task_id)
        await run_until_idle(manager, seconds=3 * 3600)
    assert manager.get(task_id).status is TaskStatus.SUCCESS
    assert calls[1] - calls[0] >= 3600 and calls[2] - calls[1] >= 3600
