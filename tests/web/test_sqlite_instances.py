"""Two live instances sharing one SQLite file: idempotency keys across them through the polled key feed,
and the instance that runs each task in the JSON of `/tasks` and `/tasks/{id}`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, TaskStatus
from taskflow._models import utcnow
from taskflow.stores import SqliteStore
from tests.helpers import serve, wait_until

pytestmark = pytest.mark.anyio


def instance(path: Path, gate: anyio.Event) -> tuple[FastAPI, TaskManager]:
    """An app whose `POST /charge/{key}` adds `charge` with that key, and `POST /fail/{key}` a task that
    fails once `gate` is set."""
    manager = TaskManager(snapshot_backend=SqliteStore(path), heartbeat_interval=0.2, heartbeat_ttl=5.0)
    app = FastAPI()
    TaskAdmin(app, manager, auto_install=True)

    @manager.task()
    async def charge(amount: int) -> int:
        return amount

    @manager.task()
    async def refuse() -> None:
        await gate.wait()
        raise RuntimeError("card declined")

    @app.post("/charge/{key}")
    async def add(key: str, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(charge, 10, idempotency_key=key)}

    @app.post("/fail/{key}")
    async def add_failing(key: str, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(refuse, idempotency_key=key)}

    return app, manager


async def test_a_key_used_on_another_instance_returns_the_original_id(
    anyio_backend: str, tmp_path: Path
) -> None:
    """Once A's task holds a key, add_task with it on B returns A's id; a key A's failed task held is free."""
    gate = anyio.Event()
    app_a, a = instance(tmp_path / "shared.db", gate)
    app_b, b = instance(tmp_path / "shared.db", gate)
    async with serve(app_a) as http_a, serve(app_b) as http_b:
        first = (await http_a.post("/charge/order-1")).json()["task_id"]
        await wait_until(lambda: a.get(first).status is TaskStatus.SUCCESS)
        # B learns of the key from the file's key log, polled; not from a round trip in add_task.
        await wait_until(lambda: b.table.key_holder("order-1") == first)
        again = (await http_b.post("/charge/order-1")).json()["task_id"]
        assert again == first
        assert b.statistics().total == 0  # nothing enqueued on B
        failing = (await http_a.post("/fail/order-2")).json()["task_id"]
        await wait_until(lambda: b.table.key_holder("order-2") == failing)
        assert (await http_b.post("/charge/order-2")).json()["task_id"] == failing
        gate.set()
        await wait_until(lambda: a.get(failing).status is TaskStatus.FAILED)
        await wait_until(lambda: b.table.key_holder("order-2") is None)  # released on every instance
        fresh = (await http_b.post("/charge/order-2")).json()["task_id"]
        assert fresh != failing
        await wait_until(lambda: b.get(fresh).status is TaskStatus.SUCCESS)
        assert b.statistics().total == 1


async def test_the_json_of_a_task_names_the_instance_that_runs_it(anyio_backend: str, tmp_path: Path) -> None:
    """`/tasks` and `/tasks/{id}` carry `instance`: the owner in the store, or this instance for its own."""
    gate = anyio.Event()
    app_a, a = instance(tmp_path / "shared.db", gate)
    app_b, b = instance(tmp_path / "shared.db", gate)
    async with serve(app_a) as http_a, serve(app_b) as http_b:
        id_a, id_b = a.actions.persistence.instance_id, b.actions.persistence.instance_id
        assert id_a and id_b and id_a != id_b
        on_a = (await http_a.post("/fail/held")).json()["task_id"]  # stays running until the gate opens
        on_b = (await http_b.post("/charge/paid")).json()["task_id"]
        await wait_until(lambda: b.get(on_b).status is TaskStatus.SUCCESS)
        await wait_until(lambda: a.get(on_a).status is TaskStatus.RUNNING)
        # A's own running task, from memory; B's, from the store.
        assert (await http_a.get(f"/tasks/{on_a}")).json()["instance"] == id_a
        assert (await http_a.get(f"/tasks/{on_b}")).json()["instance"] == id_b
        listed = {t["task_id"]: t["instance"] for t in (await http_b.get("/tasks")).json()}
        assert listed == {on_a: id_a, on_b: id_b}
        gate.set()
        await wait_until(lambda: a.get(on_a).status is TaskStatus.FAILED)


async def test_deleting_history_releases_its_keys_on_every_instance(
    anyio_backend: str, tmp_path: Path
) -> None:
    """A's succeeded task holds a key B mirrors; deleting it from the history on A frees the key on B too."""
    gate = anyio.Event()
    app_a, a = instance(tmp_path / "shared.db", gate)
    app_b, b = instance(tmp_path / "shared.db", gate)
    async with serve(app_a) as http_a, serve(app_b) as http_b:
        first = (await http_a.post("/charge/order-9")).json()["task_id"]
        await wait_until(lambda: a.get(first).status is TaskStatus.SUCCESS)
        await wait_until(lambda: b.table.key_holder("order-9") == first)
        deleted = await a.actions.delete_history(utcnow() + timedelta(seconds=1))
        assert deleted["backend"] == 1
        assert a.table.key_holder("order-9") is None  # A forgot it at once
        await wait_until(lambda: b.table.key_holder("order-9") is None)  # B through the key log
        fresh = (await http_b.post("/charge/order-9")).json()["task_id"]
        assert fresh != first
        await wait_until(lambda: b.get(fresh).status is TaskStatus.SUCCESS)
