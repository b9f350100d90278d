"""Named queues, priorities and admission control (docs/queues.md).

Run it:  uvicorn examples.queues_app:app
Then:    for i in $(seq 1 30); do curl -s -X POST "localhost:8000/emails?to=u$i@example.com"; echo; done
         curl -X POST "http://localhost:8000/password-reset?to=vip@example.com"   # jumps the queue
         curl "http://localhost:8000/tasks/queues"
         curl -X PATCH "http://localhost:8000/tasks/queues/emails" -H 'content-type: application/json' \
              -d '{"concurrency": 4}'
Open http://localhost:8000/tasks/dashboard and its Queues tab. Past 20 waiting emails, POST /emails answers
429 with Retry-After: the task was refused (REJECTED in history) instead of piling up.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI

from taskflow import ManagedBackgroundTasks, QueueConfig, TaskAdmin, TaskManager, task_log

task_manager = TaskManager(
    queues={
        "emails": QueueConfig(concurrency=2, max_size=20),  # 2 at once, 20 may wait, then 429
        "reports": QueueConfig(concurrency=1),  # one at a time, any number may wait
    },
    max_pending=10_000,  # the whole process: past this many unfinished tasks, refuse (429)
)
app = FastAPI()
TaskAdmin(app, task_manager)  # the API, the dashboard, and 429 for refused tasks
Tasks = Annotated[ManagedBackgroundTasks, Depends(task_manager.get_tasks)]


@task_manager.task(queue="emails", retries=2, delay=1.0)
async def send_email(to: str, subject: str) -> None:
    await anyio.sleep(0.5)  # the SMTP round trip
    task_log(f"sent {subject!r}", to=to)


@task_manager.task(queue="emails", priority=10)  # starts before every waiting send_email
async def send_password_reset(to: str) -> None:
    await anyio.sleep(0.5)
    task_log("sent a password reset", to=to)


@task_manager.task(queue="reports")
def build_report(name: str) -> None:
    task_log(f"built report {name}")


@app.post("/emails")
async def emails(to: str, tasks: Tasks) -> dict[str, Any]:
    return {"task_id": tasks.add_task(send_email, to, "Welcome")}


@app.post("/password-reset")
async def password_reset(to: str, tasks: Tasks) -> dict[str, Any]:
    return {"task_id": tasks.add_task(send_password_reset, to)}


@app.post("/reports/{name}")
async def reports(name: str, tasks: Tasks, urgent: bool = False) -> dict[str, Any]:
    # A per-call priority: an urgent report starts before the others waiting in its queue.
    return {"task_id": tasks.add_task(build_report, name, priority=5 if urgent else 0)}
