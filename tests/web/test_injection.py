"""The three injection patterns, install() scoped to one app, and running without a lifespan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from fastapi.testclient import TestClient

from taskflow import ManagedBackgroundTasks, TaskAdmin, TaskManager, TaskStatus
from tests.helpers import serve, wait_finished


def make_app(*, auto_install: bool) -> tuple[FastAPI, TaskManager, list[str]]:
    tm = TaskManager()
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=auto_install)
    ran: list[str] = []

    @tm.task()
    async def job(label: str) -> None:
        ran.append(label)

    def plain_task(label: str) -> None:
        ran.append(f"plain:{label}")

    @app.post("/native")
    async def native(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(job, "native")}

    @app.post("/managed")
    def managed(background_tasks: ManagedBackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(job, "managed")}

    @app.post("/depends")
    async def depends(tasks: ManagedBackgroundTasks = Depends(tm.get_tasks)) -> Any:  # noqa: B008
        return {"task_id": tasks.add_task(job, label="depends")}

    @app.post("/mixed")
    async def mixed(background_tasks: BackgroundTasks, tasks: Any = Depends(tm.get_tasks)) -> Any:  # noqa: B008
        background_tasks.add_task(plain_task, "before")
        task_id = tasks.add_task(job, "mixed")
        background_tasks.add_task(plain_task, "after")
        return {"task_id": task_id}

    return app, tm, ran


@pytest.mark.parametrize("route", ["/native", "/managed", "/depends"])
async def test_each_injection_pattern_returns_a_tracked_task_id(route: str) -> None:
    """Plain annotation, ManagedBackgroundTasks annotation and Depends(get_tasks) all return task ids."""
    app, tm, ran = make_app(auto_install=True)
    async with serve(app) as client:
        response = await client.post(route)
        assert response.status_code == 200
        task_id = response.json()["task_id"]
        (record,) = await wait_finished(tm, [task_id])
    assert record.status is TaskStatus.SUCCESS and ran == [route.strip("/")]


async def test_unmanaged_tasks_on_the_same_object_still_run() -> None:
    """Plain BackgroundTasks items added beside a managed task still run after the response."""
    app, tm, ran = make_app(auto_install=False)
    async with serve(app) as client:
        task_id = (await client.post("/mixed")).json()["task_id"]
        await wait_finished(tm, [task_id])
    assert sorted(ran) == ["mixed", "plain:after", "plain:before"]


async def test_depends_works_without_install() -> None:
    """Depends(task_manager.get_tasks) needs no install()."""
    app, tm, _ = make_app(auto_install=False)
    async with serve(app) as client:
        task_id = (await client.post("/depends")).json()["task_id"]
        (record,) = await wait_finished(tm, [task_id])
    assert record.status is TaskStatus.SUCCESS


async def test_install_affects_only_the_app_it_is_given() -> None:
    """A second FastAPI app in the same process keeps plain BackgroundTasks (fastapi-taskflow patched all)."""
    app, _tm, _ = make_app(auto_install=True)
    other = FastAPI()
    kinds: list[str] = []

    @other.post("/other")
    async def other_route(background_tasks: BackgroundTasks) -> Any:
        kinds.append(type(background_tasks).__name__)
        return {"result": background_tasks.add_task(lambda: None)}

    async with serve(other) as client:
        response = await client.post("/other")
    assert kinds == ["BackgroundTasks"] and response.json() == {"result": None}
    async with serve(app) as client:
        assert (await client.post("/native")).json()["task_id"]


def test_without_a_lifespan_tasks_run_after_the_response_with_retries(anyio_backend: str) -> None:
    """TestClient outside `with` (no lifespan): the task runs inline after the response, with retries."""
    tm = TaskManager()
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=True)
    calls: list[int] = []

    @tm.task(retries=2)
    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")

    @app.post("/run")
    def run(background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(flaky)}

    client = TestClient(app, backend=anyio_backend)
    task_id = client.post("/run").json()["task_id"]
    body = client.get(f"/tasks/{task_id}").json()
    assert body["status"] == "success" and body["retries_used"] == 2 and len(calls) == 3


def test_testclient_with_lifespan_runs_tasks_supervised(anyio_backend: str) -> None:
    """TestClient inside `with` runs the lifespan: tasks are supervised and the app shuts down cleanly."""
    app, tm, ran = make_app(auto_install=True)
    with TestClient(app, backend=anyio_backend) as client:
        task_id = client.post("/native").json()["task_id"]
        assert tm.is_running
        for _ in range(1000):
            if client.get(f"/tasks/{task_id}").json()["status"] == "success":
                break
    assert not tm.is_running and ran == ["native"]


async def test_init_app_composes_with_the_apps_own_lifespan() -> None:
    """The app's own lifespan still runs, inside taskflow's, and its startup code can add tasks."""
    from contextlib import asynccontextmanager

    events: list[str] = []
    tm = TaskManager()

    @tm.task()
    async def warmup() -> None:
        events.append("warmup task ran")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        events.append("app startup")
        task_id, _ = tm.launcher.submit(warmup, (), {})
        await tm.launcher.start(task_id)
        yield {"value": 1}
        events.append("app shutdown")

    app = FastAPI(lifespan=lifespan)
    TaskAdmin(app, tm)
    tm.init_app(app)  # a second call for the same app is a no-op
    async with serve(app) as client:
        assert (await client.get("/tasks")).status_code == 200
        await wait_finished(tm, [r.task_id for r in tm.table.records()])
    assert events == ["app startup", "warmup task ran", "app shutdown"]


async def test_startup_and_shutdown_coroutines_for_manual_lifespans() -> None:
    """fastapi-taskflow's `await startup()` / `await shutdown()` run the supervised runtime too."""
    tm = TaskManager()

    @tm.task()
    async def job() -> None:
        pass

    await tm.startup()
    try:
        assert tm.is_running
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        (record,) = await wait_finished(tm, [task_id])
    finally:
        await tm.shutdown()
    assert record.status is TaskStatus.SUCCESS and not tm.is_running


def test_get_tasks_is_called_on_the_event_loop_not_in_a_thread() -> None:
    """Depends(get_tasks) is a coroutine function, so FastAPI does not pay a thread hop per request."""
    import inspect

    assert inspect.iscoroutinefunction(TaskManager().get_tasks)


def test_plain_and_managed_items_run_after_the_response_in_the_order_added(anyio_backend: str) -> None:
    """A request's plain items and its managed tasks run after the response, in the order they were added."""
    app, tm, ran = make_app(auto_install=False)
    client = TestClient(app, backend=anyio_backend)  # no lifespan: the managed task runs inline, in order
    task_id = client.post("/mixed").json()["task_id"]
    assert ran == ["plain:before", "mixed", "plain:after"]
    assert tm.get(task_id).status is TaskStatus.SUCCESS


def test_a_manager_without_a_store_adds_no_middleware_until_install(tmp_path: Path) -> None:
    """Without a store or install() nothing needs a per-request layer; a store or install() adds one, once."""
    bare = FastAPI()
    TaskAdmin(bare, TaskManager())
    assert bare.user_middleware == []
    stored = FastAPI()
    TaskAdmin(stored, TaskManager(snapshot_db=str(tmp_path / "tasks.db")))
    assert len(stored.user_middleware) == 1
    installed = FastAPI()
    tm = TaskManager()
    TaskAdmin(installed, tm)
    tm.install(installed)
    tm.install(installed)
    assert len(installed.user_middleware) == 1


async def test_install_after_taskadmin_still_injects_managed_tasks() -> None:
    """install() called after TaskAdmin (whose init_app added no middleware) makes BackgroundTasks managed."""
    app, tm, ran = make_app(auto_install=False)
    tm.install(app)
    async with serve(app) as client:
        task_id = (await client.post("/native")).json()["task_id"]
        (record,) = await wait_finished(tm, [task_id])
    assert record.status is TaskStatus.SUCCESS and ran == ["native"]
