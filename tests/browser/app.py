"""The app the dashboard's browser and end-to-end stream tests run under uvicorn.

Environment: `TASKFLOW_TEST_AUTH=1` turns on auth (users `admin` and the read-only `viewer`, both with
password `secret`); `TASKFLOW_TEST_SECRET`
sets the session key; `TASKFLOW_TEST_FILL=<n>` preloads n finished tasks; `TASKFLOW_TEST_DB=<path>` keeps
the tasks in a SQLite store at that path. Routes under /run start tasks;
each returns the new task's id. `/schedule-digest` schedules a one-off run (the Schedules view's one-offs).
"""

from __future__ import annotations

import os
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI

from taskflow import ManagedBackgroundTasks, QueueConfig, TaskAdmin, TaskManager, task_log
from taskflow.stores import SqliteStore
from tests.taskflow import process_tasks

task_manager = TaskManager(
    snapshot_backend=SqliteStore(os.environ["TASKFLOW_TEST_DB"])
    if os.environ.get("TASKFLOW_TEST_DB")
    else None,
    max_terminal_records=None,
    config={"policies": {"feeds": {"delay": 0.01, "max_restarts": 1, "retry_on": "ConnectionError"}}},
    queues={"mail": QueueConfig(concurrency=1, max_size=3)},  # the Queues tab
)
_seen: set[str] = set()


@task_manager.actor(policy="feeds")
async def feed_poller() -> None:
    """A service that cannot reach its feed: restarted once, then given up on (the supervision view)."""
    raise ConnectionError("feed <b>unreachable</b>")


@task_manager.schedule(every=3600, name="hourly_report")
async def hourly_report() -> None:
    """A periodic schedule (the Schedules view): due each full hour, run now from the dashboard."""
    task_log("hourly report")
    await anyio.sleep(0.05)


# Shown in the supervision view's functions table: a process task (Kind `process`), never run here, and a
# function with a queue and a priority.
task_manager.task(executor="process", name="crunch")(process_tasks.pid)


@task_manager.task(queue="mail", priority=7)
async def mail_digest() -> None:
    """Waits in the `mail` queue ahead of its priority-0 tasks."""


@task_manager.task()
async def quick(n: int) -> None:
    """Logs a line and finishes."""
    task_log(f"quick step {n}")
    await anyio.sleep(0.05)


@task_manager.task()
def flaky(marker: str) -> None:
    """Fails the first time it runs for a marker, succeeds on a retry."""
    task_log(f"flaky run for {marker}")
    if marker not in _seen:
        _seen.add(marker)
        raise RuntimeError(f"first run of {marker} fails <b>on purpose</b>")


@task_manager.task()
def noisy(text: str) -> None:
    """Logs whatever it is given (the XSS test gives it markup)."""
    task_log(text)
    raise ValueError(text)


@task_manager.task()
async def slow(seconds: float) -> None:
    """Sleeps, so it can be seen running and cancelled."""
    await anyio.sleep(seconds)


app = FastAPI()
TaskAdmin(
    app,
    task_manager,
    display_func_args=True,
    auth=[("admin", "secret"), ("viewer", "secret")] if os.environ.get("TASKFLOW_TEST_AUTH") == "1" else None,
    read_only_users=["viewer"] if os.environ.get("TASKFLOW_TEST_AUTH") == "1" else (),
    secret_key=os.environ.get("TASKFLOW_TEST_SECRET"),
    poll_interval=float(os.environ.get("TASKFLOW_TEST_POLL", "30")),
    title="taskflow tests",
)
if os.environ.get("TASKFLOW_TEST_FILL"):  # history for the scale measurement (docs/dashboard.md)
    from tests.browser.fill import fill

    fill(task_manager, int(os.environ["TASKFLOW_TEST_FILL"]))
_TASKS = {"quick": (quick, int), "flaky": (flaky, str), "noisy": (noisy, str), "slow": (slow, float)}


@app.get("/health")
async def health() -> dict[str, bool]:
    """Readiness probe for the test harness."""
    return {"ok": True}


@app.post("/run/{kind}")
async def run(
    kind: str, arg: str, tasks: Annotated[ManagedBackgroundTasks, Depends(task_manager.get_tasks)]
) -> dict[str, str]:
    """Start one task of `kind` with `arg`."""
    func, convert = _TASKS[kind]
    return {"task_id": tasks.add_task(func, convert(arg), tags={"kind": kind})}


@app.post("/run-pair/{kind}")
async def run_pair(
    kind: str, arg: str, tasks: Annotated[ManagedBackgroundTasks, Depends(task_manager.get_tasks)]
) -> dict[str, list[str]]:
    """Start two tasks of `kind` in one request (ids made within the same millisecond or so)."""
    func, convert = _TASKS[kind]
    return {"task_ids": [tasks.add_task(func, convert(arg), tags={"kind": kind}) for _ in range(2)]}


@app.post("/run-queued")
async def run_queued(
    seconds: float, tasks: Annotated[ManagedBackgroundTasks, Depends(task_manager.get_tasks)]
) -> dict[str, str]:
    """Start one `slow` task in the `mail` queue (429 once the queue is full)."""
    return {"task_id": tasks.add_task(slow, seconds, queue="mail")}


@app.post("/schedule-digest")
async def schedule_digest(run_key: str, delay: float) -> dict[str, str]:
    """Schedule `mail_digest` once, `delay` seconds from now, under `run_key` (a waiting one-off)."""
    return {"run_key": await task_manager.schedule_once(mail_digest, delay=delay, run_key=run_key)}
