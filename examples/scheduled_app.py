"""Schedules: a periodic job, a cron job in a time zone, and one-off reminders, exactly once per slot
across every instance that shares the SQLite file (run two uvicorn processes on it to see it). The digest
and the reminders wait in the `outbox` queue (two at a time), an urgent reminder ahead of the others.

Run it:  uvicorn examples.scheduled_app:app --port 8000
         uvicorn examples.scheduled_app:app --port 8001     (a second instance on the same file)
Then:    curl "http://localhost:8000/tasks/schedules"
         curl -X POST "http://localhost:8000/remind?who=ada&minutes=1&urgent=true"
         open http://localhost:8000/tasks/dashboard  (the Schedules tab)
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from taskflow import QueueConfig, TaskAdmin, TaskManager, task_log

task_manager = TaskManager(
    snapshot_db=os.environ.get("TASKFLOW_EXAMPLE_DB", "scheduled_app.db"),
    queues={"outbox": QueueConfig(concurrency=2, max_size=1000)},
)
app = FastAPI()
TaskAdmin(app, task_manager)


@task_manager.schedule(every=60, run_on_startup=True)
async def refresh_rates() -> None:
    """Every full minute (UTC); the minute in progress at startup runs at once, unless already claimed."""
    task_log("rates refreshed")


@task_manager.schedule(
    cron="0 7 * * 1-5", timezone="Europe/Paris", catch_up="once", retries=3, delay=30, queue="outbox",
    priority=5,
)
async def morning_digest() -> None:
    """07:00 Paris time on weekdays; if every instance was down at 07:00, one catch-up run at startup.
    Waits in the outbox queue, ahead of the ordinary reminders."""
    task_log("digest sent")


@task_manager.task(queue="outbox")
async def remind(who: str) -> None:
    task_log(f"reminder for {who}")


@app.post("/remind")
async def add_reminder(who: str, minutes: float = 1.0, urgent: bool = False) -> Any:
    """A one-off run, stored until it fires (on exactly one instance), cancellable by its run key; an urgent
    one waits in the outbox ahead of everything else."""
    run_key = await task_manager.schedule_once(
        remind, who, delay=minutes * 60, run_key=f"remind-{who}", priority=10 if urgent else None
    )
    return {"run_key": run_key}


@app.delete("/remind/{who}")
async def cancel_reminder(who: str) -> Any:
    return {"cancelled": await task_manager.cancel_scheduled(f"remind-{who}")}
