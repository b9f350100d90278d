"""Module-level task functions for the process executor tests (a worker process imports them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from taskflow import get_task_context, task_log


def add(a: int, b: int) -> dict[str, object]:
    context = get_task_context()
    assert context is not None
    task_log("adding", a=a)
    return {"sum": a + b, "pid": os.getpid(), "context": (context.task_id, context.func_name, context.attempt, context.tags)}


def pid() -> int:
    return os.getpid()


def wait_for(flag: str, seconds: float = 60.0) -> int:
    """Log a line, then wait (bounded) until `flag` exists."""
    task_log(f"started in {os.getpid()}")
    deadline = time.monotonic() + seconds
    while not Path(flag).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{flag} never appeared")
        time.sleep(0.01)
    return os.getpid()


def spin(seconds: float, note: str | None = None) -> None:
    """Stay busy (sleeping) for `seconds`, writing our pid to `note` first."""
    if note is not None:
        Path(note).write_text(str(os.getpid()))
    time.sleep(seconds)


def fail(message: str) -> None:
    raise ValueError(message)
