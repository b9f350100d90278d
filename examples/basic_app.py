"""fastapi-taskflow's quick start, with only the import line changed.

Run it:  uvicorn examples.basic_app:app
Then:    curl -X POST "http://localhost:8000/signup?email=user@example.com"
         curl "http://localhost:8000/tasks"
         curl "http://localhost:8000/tasks/metrics"
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import BackgroundTasks, Depends, FastAPI

from taskflow import (
    InMemoryLogger,
    ManagedBackgroundTasks,
    TaskAdmin,
    TaskManager,
    get_task_context,
    task_log,
)

events = InMemoryLogger()
# Its own file (not the production example's), so each dashboard lists only its own tasks.
# snapshot_interval has no effect in taskflow (a DeprecationWarning says so and why); it stays so that this
# file differs from fastapi-taskflow's quick start by the import line only.
task_manager = TaskManager(
    snapshot_db=os.environ.get("TASKFLOW_EXAMPLE_DB", "basic_app.db"),
    snapshot_interval=30.0,
    loggers=[events],
    max_concurrent_tasks=10,
    max_sync_threads=8,
)
app = FastAPI()

# auto_install=True makes FastAPI's BackgroundTasks injection managed, so existing route
# signatures work without any changes (in this app only).
TaskAdmin(app, task_manager, auto_install=True)


@task_manager.task(retries=3, delay=1.0, backoff=2.0)
def send_email(address: str) -> None:
    task_log("sending the welcome email", address=address)


@task_manager.task(retries=3)
def process_order(order_id: int) -> None:
    ctx = get_task_context()
    task_log("Processing order", order_id=order_id, attempt=ctx.attempt if ctx else 0)


@task_manager.task()
async def send_notification(order_id: int) -> None:
    task_log(f"notified about order {order_id}")


# Pattern 1: keep the native annotation (requires auto_install=True)
@app.post("/signup")
def signup(email: str, background_tasks: BackgroundTasks) -> Any:
    task_id = background_tasks.add_task(send_email, address=email)
    return {"task_id": task_id}


# Pattern 2: explicit managed type (also requires auto_install=True)
@app.post("/orders/{order_id}")
def create_order(order_id: int, background_tasks: ManagedBackgroundTasks) -> Any:
    task_id = background_tasks.add_task(process_order, order_id, tags={"user_id": "42", "source": "checkout"})
    return {"task_id": task_id}


# Pattern 3: explicit Depends, no install() required; with an idempotency key
@app.post("/orders/{order_id}/notify")
async def notify(order_id: int, tasks: ManagedBackgroundTasks = Depends(task_manager.get_tasks)) -> Any:  # noqa: B008
    task_id = tasks.add_task(send_notification, order_id, idempotency_key=f"order-{order_id}-notified")
    return {"task_id": task_id}
