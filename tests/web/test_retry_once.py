"""Retrying a failed task: concurrent retries of one task make one run, on one instance and on every
instance sharing a store; the run links to the task it retries and releases its key when it fails."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, TaskStatus
from taskflow.stores import RedisStore
from tests.helpers import serve, wait_finished, wait_until
from tests.redis_service import REDIS_URL, redis_prefix

CONCURRENT = 20


def make_app(state: dict[str, Any], **options: Any) -> tuple[FastAPI, TaskManager]:
    """An app whose `charge` fails while `state["fail"]` and waits for `state["gate"]` when it is set."""
    tm = TaskManager(**options)
    app = FastAPI()
    TaskAdmin(app, tm, auto_install=True)

    @tm.task(name="charge")
    async def charge(order_id: int) -> None:
        state["calls"].append(order_id)
        if state["gate"] is not None:
            await state["gate"].wait()
        if state["fail"]:
            raise RuntimeError("card declined")

    @app.post("/charge/{order_id}")
    async def create(order_id: int, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(charge, order_id)}

    return app, tm


async def retry_all(clients: list[httpx.AsyncClient], task_id: str) -> list[httpx.Response]:
    """POST the retry of `task_id` CONCURRENT times at once, spread over `clients`."""
    answers: list[httpx.Response] = []

    async def one(client: httpx.AsyncClient) -> None:
        answers.append(await client.post(f"/tasks/{task_id}/retry"))

    async with anyio.create_task_group() as tg:
        for i in range(CONCURRENT):
            tg.start_soon(one, clients[i % len(clients)])
    return answers


async def test_concurrent_retries_on_one_instance_make_one_run() -> None:
    """20 concurrent retries of one failed task: one new task, the same id in every answer, one run."""
    state: dict[str, Any] = {"fail": True, "calls": [], "gate": None}
    app, tm = make_app(state)
    async with serve(app) as client:
        failed_id = (await client.post("/charge/7")).json()["task_id"]
        await wait_finished(tm, [failed_id])
        state["fail"] = False
        answers = await retry_all([client], failed_id)
        assert {a.status_code for a in answers} == {200}
        ids = {a.json()["task_id"] for a in answers}
        assert len(ids) == 1
        assert sum(a.json()["created"] for a in answers) == 1
        (new_id,) = ids
        (new,) = await wait_finished(tm, [new_id])
        retries = (await client.get("/tasks", params={"tag": f"retry_of:{failed_id}"})).json()
    assert new.status is TaskStatus.SUCCESS and new.tags["retry_of"] == failed_id
    assert [r["task_id"] for r in retries] == [new_id]
    assert state["calls"] == [7, 7]


async def test_a_failed_retry_releases_the_key_so_a_later_retry_runs() -> None:
    """While a retry runs, retrying again returns it; once it failed, the next retry is a new run."""
    state: dict[str, Any] = {"fail": True, "calls": [], "gate": anyio.Event()}
    app, tm = make_app(state)
    async with serve(app) as client:
        state["gate"].set()
        failed_id = (await client.post("/charge/1")).json()["task_id"]
        await wait_finished(tm, [failed_id])
        state["gate"] = anyio.Event()
        first = (await client.post(f"/tasks/{failed_id}/retry")).json()
        await wait_until(lambda: tm.get(first["task_id"]).status is TaskStatus.RUNNING)
        again = (await client.post(f"/tasks/{failed_id}/retry")).json()
        state["gate"].set()
        await wait_finished(tm, [first["task_id"]])
        later = (await client.post(f"/tasks/{failed_id}/retry")).json()
        await wait_finished(tm, [later["task_id"]])
    assert first["created"] and not again["created"] and again["task_id"] == first["task_id"]
    assert later["created"] and later["task_id"] != first["task_id"]
    assert state["calls"] == [1, 1, 1]


async def test_public_retry_returns_the_same_run_to_concurrent_callers() -> None:
    """`TaskManager.retry` called concurrently for one task returns one record to all callers."""
    state: dict[str, Any] = {"fail": True, "calls": [], "gate": None}
    app, tm = make_app(state)
    async with serve(app) as client:
        failed_id = (await client.post("/charge/3")).json()["task_id"]
        await wait_finished(tm, [failed_id])
        records = []

        async def one() -> None:
            records.append(await tm.retry(failed_id))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
        await wait_finished(tm, [records[0].task_id])
    assert {r.task_id for r in records} == {records[0].task_id}
    assert state["calls"] == [3, 3]


async def two_instances_retry_once(first_options: dict[str, Any], second_options: dict[str, Any]) -> None:
    """Fail a task on one instance, retry it 20 times at once over both: one answer id, one run."""
    state: dict[str, Any] = {"fail": True, "calls": [], "gate": None}
    first_app, first = make_app(state, **first_options)
    second_app, second = make_app(state, **second_options)
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(serve(first_app))
        two = await stack.enter_async_context(serve(second_app))
        failed_id = (await one.post("/charge/5")).json()["task_id"]
        await wait_finished(first, [failed_id])
        await wait_until(lambda: first.store_statistics().queued == 0)  # type: ignore[union-attr]
        state["fail"] = False
        answers = await retry_all([one, two], failed_id)
        assert {a.status_code for a in answers} == {200}
        ids = {a.json()["task_id"] for a in answers}
        assert len(ids) == 1
        (new_id,) = ids
        owner = first if first.actions.table.get(new_id) is not None else second
        (new,) = await wait_finished(owner, [new_id])
    assert new.status is TaskStatus.SUCCESS
    assert state["calls"] == [5, 5]


async def test_concurrent_retries_on_two_instances_sharing_sqlite_make_one_run(tmp_path: Path) -> None:
    """Two managers on one SQLite file, 20 retries of one failed task spread over both: one run."""
    db = str(tmp_path / "tasks.db")
    await two_instances_retry_once({"snapshot_db": db}, {"snapshot_db": db})


@pytest.mark.services
async def test_concurrent_retries_on_two_instances_sharing_redis_make_one_run() -> None:
    """Two managers on one Redis prefix, 20 retries of one failed task spread over both: one run."""
    with redis_prefix() as prefix:
        await two_instances_retry_once(
            {"snapshot_backend": RedisStore(REDIS_URL, prefix=prefix)},
            {"snapshot_backend": RedisStore(REDIS_URL, prefix=prefix)},
        )
