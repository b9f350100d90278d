"""Two (or more) instances of one app sharing a Redis store: run each in its own terminal, on any hosts.

    pip install 'anyio-taskflow[redis]'
    TASKFLOW_REDIS_URL=redis://localhost:6379/0 uvicorn examples.redis_instances:app --port 8001
    TASKFLOW_REDIS_URL=redis://localhost:6379/0 uvicorn examples.redis_instances:app --port 8002

    curl -X POST 'localhost:8001/orders/42/charge'     # a task id
    curl -X POST 'localhost:8002/orders/42/charge'     # the same id: the key is held on instance 8001
    curl localhost:8002/tasks                          # every instance's tasks, from the shared store

Open http://localhost:8001/tasks/dashboard: the tasks that instance 8002 runs appear there live, with the
id of the instance that runs them (no sticky sessions).

`kill -9` one instance while its tasks run: the other takes its unfinished durable tasks over within
`heartbeat_ttl` seconds (re-running the ones that had not started).

With `TASKFLOW_ADMIN_PASSWORD` and `TASKFLOW_SECRET` set (the same on every instance), the dashboard asks
for a sign-in (user `admin`). The audit log and the sessions live in Redis too: sign in on 8001, and the
Audit tab of 8002 shows it; sign out on 8001, and that cookie is refused by 8002 as well.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager
from taskflow.backends import RedisBackend

task_manager = TaskManager(
    snapshot_backend=RedisBackend(
        os.environ.get("TASKFLOW_REDIS_URL", "redis://localhost:6379/0"),
        prefix=os.environ.get("TASKFLOW_REDIS_PREFIX", "shop:tasks"),
    ),
    heartbeat_interval=2.0,
    heartbeat_ttl=6.0,
)
app = FastAPI()
_password = os.environ.get("TASKFLOW_ADMIN_PASSWORD")
TaskAdmin(
    app,
    task_manager,
    auto_install=True,
    auth=[("admin", _password)] if _password else None,
    secret_key=os.environ.get("TASKFLOW_SECRET"),  # the same on every instance: any of them serves a session
)


@task_manager.task(persist=True, retries=3)
async def charge(order_id: int) -> str:
    """Durable: committed to Redis before the response, re-run elsewhere if this instance dies first."""
    await anyio.sleep(0.1)  # the payment provider's call
    return f"charged order {order_id}"


@app.post("/orders/{order_id}/charge")
async def charge_order(order_id: int, background_tasks: BackgroundTasks) -> Any:
    task_id = background_tasks.add_task(charge, order_id, idempotency_key=f"charge-{order_id}")
    return {"task_id": task_id}
