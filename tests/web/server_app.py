"""An app served by real servers in tests (uvicorn on asyncio, hypercorn on trio).

It keeps every task's latest status in $TASKFLOW_TEST_SUMMARY, so a test can check that nothing was left
unaccounted for after SIGTERM. With $TASKFLOW_TEST_DB it persists to that SQLite file, with
$TASKFLOW_TEST_REDIS_URL and $TASKFLOW_TEST_REDIS_PREFIX to that Redis prefix (short heartbeats, so
a killed instance is detected within a second), with $TASKFLOW_TEST_SYNCHRONOUS the SQLite file opened at that
synchronous level, and durable tasks append their id and the process id to
$TASKFLOW_TEST_RUNS each time they run, so a test can count executions across processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import sniffio
from fastapi import BackgroundTasks, FastAPI

from taskflow import TaskAdmin, TaskManager, get_task_context, task_log
from taskflow.stores import RedisStore, SqliteStore

_env = os.environ


def _store() -> RedisStore | SqliteStore | None:
    if _env.get("TASKFLOW_TEST_REDIS_URL"):
        return RedisStore(_env["TASKFLOW_TEST_REDIS_URL"], prefix=_env["TASKFLOW_TEST_REDIS_PREFIX"])
    if _env.get("TASKFLOW_TEST_SYNCHRONOUS"):  # the SQLite file with a synchronous level of its own
        return SqliteStore(_env["TASKFLOW_TEST_DB"], synchronous=_env["TASKFLOW_TEST_SYNCHRONOUS"])
    return None


task_manager = TaskManager(
    shutdown_grace=float(os.environ.get("TASKFLOW_TEST_GRACE", "1")),
    snapshot_db=None if _env.get("TASKFLOW_TEST_SYNCHRONOUS") else _env.get("TASKFLOW_TEST_DB"),
    snapshot_backend=_store(),
    heartbeat_interval=0.2,
    heartbeat_ttl=1.0,
    max_concurrent_tasks=4,
)
app = FastAPI()
TaskAdmin(app, task_manager, auto_install=True)


class _Summary:
    """A listener sink: rewrites the summary file on every terminal change, so the file reflects the
    shutdown's last settlements even though the server re-raises SIGTERM (no atexit) once it has stopped."""

    def take(self, changes: Sequence[Any]) -> None:
        if any(change.record.status.is_terminal for change in changes):
            statuses = {r.task_id: r.status.value for r in task_manager.table.records()}
            Path(os.environ["TASKFLOW_TEST_SUMMARY"]).write_text(json.dumps(statuses), encoding="utf-8")


if os.environ.get("TASKFLOW_TEST_SUMMARY"):
    task_manager.listeners.add(_Summary())


@task_manager.task(retries=2)
async def flaky(attempts_needed: int) -> str:
    ctx = get_task_context()
    assert ctx is not None
    task_log(f"running on {sniffio.current_async_library()}")
    if ctx.attempt + 1 < attempts_needed:
        raise RuntimeError("not yet")
    return "ok"


@task_manager.task()
def sync_work(n: int) -> int:
    return n * 2


@task_manager.task()
async def sleeper(seconds: float) -> None:
    await anyio.sleep(seconds)


@app.post("/work")
async def work(background_tasks: BackgroundTasks) -> Any:
    return {
        "flaky": background_tasks.add_task(flaky, 2),
        "sync": background_tasks.add_task(sync_work, 21),
    }


@app.post("/sleep")
async def sleep(background_tasks: BackgroundTasks, seconds: float = 60.0) -> Any:
    return {"task_id": background_tasks.add_task(sleeper, seconds)}


def _note_run(task_id: str) -> None:
    runs = os.environ.get("TASKFLOW_TEST_RUNS")
    if runs:
        with open(runs, "a", encoding="utf-8") as f:  # one short line per run: appends do not interleave
            f.write(f"{task_id} {os.getpid()}\n")


@task_manager.task(persist=True)
async def durable_work(seconds: float) -> None:
    ctx = get_task_context()
    assert ctx is not None
    _note_run(ctx.task_id)
    await anyio.sleep(seconds)


@task_manager.task(persist=True, requeue_on_interrupt=True)
async def idempotent_work(seconds: float) -> None:
    ctx = get_task_context()
    assert ctx is not None
    _note_run(ctx.task_id)
    await anyio.sleep(seconds)


@app.post("/durable")
async def durable(background_tasks: BackgroundTasks, seconds: float = 0.3, requeue: bool = False) -> Any:
    func = idempotent_work if requeue else durable_work
    return {"task_id": background_tasks.add_task(func, seconds)}
