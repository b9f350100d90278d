"""A production-shaped app: SQLite persistence, durable tasks, a dashboard behind a login, observers.

Run it:   export TASKFLOW_ADMIN_PASSWORD='a long passphrase' TASKFLOW_SECRET='another long secret'
          uvicorn examples.production_app:app
          (or, on trio: hypercorn --worker-class trio examples.production_app:app)
Then:     curl -X POST "http://localhost:8000/orders/42"
          open http://localhost:8000/tasks/dashboard   (user admin, the password you exported)

- the dashboard's password has no default: without TASKFLOW_ADMIN_PASSWORD the app refuses to start.
- tasks are kept in production_app.db (TASKFLOW_DB to change it), a file of its own.
- `persist=True`: the order's task is committed to the store before the response carrying its id is sent;
  after a crash (even kill -9) it runs, or shows as interrupted, on the next start or on a peer process.
- `requeue_on_interrupt=True`: the idempotent report is re-run if a shutdown or a crash cut it short.
- the idempotency key makes a retried POST return the same task id instead of charging twice.
"""

from __future__ import annotations

import os
from typing import Any

import anyio
from fastapi import BackgroundTasks, FastAPI

from taskflow import StdoutLogger, TaskAdmin, TaskManager, task_log

ADMIN_PASSWORD = os.environ.get("TASKFLOW_ADMIN_PASSWORD", "")
if not ADMIN_PASSWORD:
    # Refuse to start rather than guard the dashboard (which can cancel and retry tasks) with a
    # password anyone can guess.
    raise SystemExit(
        "examples/production_app.py: set TASKFLOW_ADMIN_PASSWORD to the dashboard's admin password; "
        "there is no default password"
    )

task_manager = TaskManager(
    snapshot_db=os.environ.get("TASKFLOW_DB", "production_app.db"),
    loggers=[StdoutLogger(log_lifecycle=True, min_level="warning")],
    max_concurrent_tasks=100,
    max_sync_threads=8,
    shutdown_grace=15,
    retention_days=30,
)
app = FastAPI()
TaskAdmin(
    app,
    task_manager,
    auto_install=True,
    auth=("admin", ADMIN_PASSWORD),
    # Give a fixed secret when running several workers, or each signs sessions with its own random key.
    secret_key=os.environ.get("TASKFLOW_SECRET"),
)


@task_manager.task(persist=True, retries=5, delay=0.5, backoff=2.0, max_delay=30, jitter=0.2, timeout=20,
                   retry_on=(ConnectionError, TimeoutError))  # fmt: skip
async def charge_order(order_id: int) -> None:
    task_log("charging", order_id=order_id)
    await anyio.sleep(0.05)


@task_manager.task(persist=True, requeue_on_interrupt=True, timeout=300)
def build_report(day: str) -> None:
    task_log(f"building the report of {day}")


@app.post("/orders/{order_id}")
async def create_order(order_id: int, background_tasks: BackgroundTasks) -> Any:
    task_id = background_tasks.add_task(
        charge_order, order_id, idempotency_key=f"charge-{order_id}", tags={"order": str(order_id)}
    )
    return {"task_id": task_id}


@app.post("/reports/{day}")
def request_report(day: str, background_tasks: BackgroundTasks) -> Any:
    return {"task_id": background_tasks.add_task(build_report, day)}
