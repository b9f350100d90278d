"""Supervision for users: named policies in a config file, a long-lived service, checkpointing tasks.

Run it:   uvicorn examples.supervised_services:app
          (or, on trio: hypercorn --worker-class trio examples.supervised_services:app)
Then:     curl -X POST "http://localhost:8000/inbox?to=ada@example.com"   # the consumer sends it
          curl -X POST "http://localhost:8000/exports?rows=500"            # a resumable export
          curl http://localhost:8000/tasks/supervision                      # policies, actors
          python -m taskflow policies --config examples/supervised_services.toml

- policies live in `supervised_services.toml` (next to this file; TASKFLOW_SERVICES_CONFIG to change it),
  overridable per deployment with TASKFLOW_POLICY_<NAME>_<KEY> environment variables.
- `inbox_consumer` is an actor: started with the app, restarted with the `inbox` policy's backoff when it
  fails, given up on (logged, visible in /tasks/supervision, `on_give_up` called) past its restart
  intensity, cancelled when the app stops.
- `export_rows` saves a checkpoint after each batch. It is `requeue_on_interrupt`: when a shutdown cuts it
  short it is kept, with its last checkpoint, in the SQLite file (TASKFLOW_SERVICES_DB), and it resumes
  from there on the next start instead of starting over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import JSONResponse

from taskflow import (
    ActorStatistics,
    ManagedBackgroundTasks,
    TaskAdmin,
    TaskManager,
    get_task_context,
    task_log,
)

CONFIG = os.environ.get("TASKFLOW_SERVICES_CONFIG", str(Path(__file__).with_name("supervised_services.toml")))

task_manager = TaskManager(
    config=CONFIG,
    snapshot_db=os.environ.get("TASKFLOW_SERVICES_DB", "supervised_services.db"),
    shutdown_grace=float(os.environ.get("TASKFLOW_SERVICES_GRACE", "5")),
)
app = FastAPI()
TaskAdmin(app, task_manager, auto_install=True)

# The in-process queue the consumer reads: made when the app starts (a memory object stream belongs to
# the event loop that uses it), written by a route.
inbox: dict[str, Any] = {}
sent: list[str] = []
exported: list[int] = []


@task_manager.task(policy="emails")
async def send_email(to: str) -> None:
    task_log("sending", to=to)
    await anyio.sleep(0.01)
    sent.append(to)


@task_manager.task(policy="exports", persist=True, requeue_on_interrupt=True)
async def export_rows(rows: int, batch: int = 100) -> None:
    context = get_task_context()
    assert context is not None
    done = (context.last_checkpoint or {"done": 0})["done"]  # resume where a shutdown stopped it
    if done:
        task_log(f"resuming at row {done}")
    while done < rows:
        await anyio.sleep(0.01)  # write one batch somewhere
        done = min(done + batch, rows)
        exported.append(done)
        context.checkpoint({"done": done})


def inbox_gave_up(stats: ActorStatistics) -> None:
    # The app decides. Here: it is logged (taskflow did that) and the app keeps serving without the
    # consumer; raise instead to stop the app.
    print(f"inbox consumer stopped for good: {stats.last_error}")


@task_manager.actor(policy="inbox", restart="permanent", on_give_up=inbox_gave_up)
async def inbox_consumer() -> None:
    send, receive = anyio.create_memory_object_stream[str](100)
    inbox["send"] = send
    async with receive:
        async for to in receive:
            if not to or "@" not in to:
                raise ValueError(f"not an address: {to!r}")  # the consumer fails: its supervisor restarts it
            # Outside a request: add the task, then start what was added (what a response would do).
            tasks = ManagedBackgroundTasks(task_manager)
            tasks.add_task(send_email, to)
            await tasks()


@app.post("/inbox")
async def post_inbox(to: str) -> Any:
    try:
        await inbox["send"].send(to)
    except (KeyError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return JSONResponse({"detail": "the inbox consumer is not running"}, status_code=503)
    return {"queued": to}


@app.post("/exports")
async def start_export(rows: int, background_tasks: BackgroundTasks) -> Any:
    return {"task_id": background_tasks.add_task(export_rows, rows)}
