"""Module-level task functions for the process executor tests: a worker process imports them by name."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from taskflow import get_task_context, task_log

BODY_LIMIT = 60.0  # no body here runs longer than this, whatever happens to the test


def add(a: int, b: int) -> dict[str, Any]:
    """Log the task's context and the sum; return them with the worker's pid."""
    context = get_task_context()
    assert context is not None
    task_log(
        f"context {context.task_id} {context.func_name} {context.attempt} {sorted(context.tags.items())}"
    )
    task_log(f"sum {a + b}", a=a)
    return {"sum": a + b, "pid": os.getpid()}


def pid() -> int:
    """Log and return the worker's pid."""
    task_log(f"pid {os.getpid()}")
    return os.getpid()


def wait_for(flag: str) -> int:
    """Log a line, then wait (bounded) until the file `flag` exists."""
    task_log(f"started in {os.getpid()}")
    deadline = time.monotonic() + BODY_LIMIT
    while not Path(flag).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{flag} never appeared")
        time.sleep(0.01)
    return os.getpid()


def hang_first(note: str) -> int:
    """The first attempt writes its pid to `note` and sleeps (until killed); later ones return at once."""
    context = get_task_context()
    if context is not None and context.attempt > 0:
        task_log(f"attempt {context.attempt} in {os.getpid()}")
        return os.getpid()
    Path(note).write_text(str(os.getpid()))
    time.sleep(BODY_LIMIT)
    return os.getpid()


def spin(seconds: float) -> int:
    """Stay busy for `seconds`, logging the pid first."""
    task_log(f"pid {os.getpid()}")
    time.sleep(seconds)
    return os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


class LockedError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def fail_unpicklably(message: str) -> None:
    raise LockedError(message)


def return_lock() -> Any:
    return threading.Lock()


def exit_body() -> None:
    sys.exit(3)


def resume(note: str) -> int:
    """First run: save a checkpoint, write the pid to `note`, sleep (until shutdown kills it). A run that
    finds the checkpoint logs where it resumed and returns."""
    context = get_task_context()
    assert context is not None
    start = (context.last_checkpoint or {"step": 0})["step"]
    task_log(f"resumed at {start}")
    if start == 0:
        context.checkpoint({"step": 1})
        Path(note).write_text(str(os.getpid()))
        time.sleep(BODY_LIMIT)
    return int(start)


def crash(code: int) -> None:
    """The worker process dies in the middle of the body."""
    os._exit(code)
