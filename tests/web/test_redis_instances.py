"""Two live instances sharing one Redis store: idempotency keys across them, through the key feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, TaskRecord, TaskStatus
from taskflow._models import utcnow
from taskflow.stores import RedisStore
from tests.helpers import serve, wait_until
from tests.redis_service import REDIS_URL, redis_prefix

pytestmark = [pytest.mark.anyio, pytest.mark.services]


def instance(prefix: str) -> tuple[FastAPI, TaskManager]:
    """One instance: an app whose `POST /charge/{key}` adds `charge` with that idempotency key."""
    manager = TaskManager(
        snapshot_backend=RedisStore(REDIS_URL, prefix=prefix), heartbeat_interval=0.2, heartbeat_ttl=5.0
    )
    app = FastAPI()
    TaskAdmin(app, manager, auto_install=True)

    @manager.task()
    async def charge(amount: int) -> int:
        return amount

    @app.post("/charge/{key}")
    async def add(key: str, background_tasks: BackgroundTasks) -> Any:
        return {"task_id": background_tasks.add_task(charge, 10, idempotency_key=key)}

    return app, manager


async def test_a_key_used_on_another_instance_returns_the_original_id(anyio_backend: str) -> None:
    """Once A's task holds a key, add_task with it on B returns A's task id and enqueues nothing."""
    with redis_prefix() as prefix:
        app_a, a = instance(prefix)
        app_b, b = instance(prefix)
        async with serve(app_a) as http_a, serve(app_b) as http_b:
            first = (await http_a.post("/charge/order-1")).json()["task_id"]
            await wait_until(lambda: a.get(first).status is TaskStatus.SUCCESS)
            # B learns of the key from the store's feed, not from a round trip in add_task.
            await wait_until(lambda: b.table.key_holder("order-1") == first)
            again = (await http_b.post("/charge/order-1")).json()["task_id"]
            assert again == first
            assert b.statistics().total == 0  # nothing enqueued on B
            # A key whose holder failed is free again: the feed releases it on every instance.
            store = a.actions.persistence.store
            assert await store.claim_idempotency_key("order-2", "elsewhere") is None
            await wait_until(lambda: b.table.key_holder("order-2") == "elsewhere")
            failed = TaskRecord(task_id="elsewhere", func_name="charge", status=TaskStatus.FAILED)
            await store.write([failed], owner="elsewhere-instance")
            await wait_until(lambda: b.table.key_holder("order-2") is None)
            fresh = (await http_b.post("/charge/order-2")).json()["task_id"]
            assert fresh != "elsewhere"
            await wait_until(lambda: b.get(fresh).status is TaskStatus.SUCCESS)


async def test_deleting_history_releases_its_keys_on_every_instance(anyio_backend: str) -> None:
    """A's succeeded task holds a key B mirrors; deleting it from the history on A frees the key on B too."""
    with redis_prefix() as prefix:
        app_a, a = instance(prefix)
        app_b, b = instance(prefix)
        async with serve(app_a) as http_a, serve(app_b) as http_b:
            first = (await http_a.post("/charge/order-9")).json()["task_id"]
            await wait_until(lambda: a.get(first).status is TaskStatus.SUCCESS)
            await wait_until(lambda: b.table.key_holder("order-9") == first)
            deleted = await a.actions.delete_history(utcnow() + timedelta(seconds=1))
            assert deleted["backend"] == 1
            await wait_until(lambda: a.table.key_holder("order-9") is None)
            await wait_until(lambda: b.table.key_holder("order-9") is None)  # B through the key feed
            fresh = (await http_b.post("/charge/order-9")).json()["task_id"]
            assert fresh != first
            await wait_until(lambda: b.get(fresh).status is TaskStatus.SUCCESS)
