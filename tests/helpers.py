"""Helpers shared by the taskflow tests: app factories and bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from taskflow import TaskManager, TaskRecord

ROOT = Path(__file__).resolve().parent.parent


async def wait_until(predicate: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """Poll `predicate` until true; fail after `seconds` (tasks run in other tasks and threads)."""
    with anyio.fail_after(seconds):
        while not predicate():
            await anyio.sleep(0.005)


async def wait_finished(
    manager: TaskManager, task_ids: Iterable[str], *, seconds: float = 10.0
) -> list[TaskRecord]:
    """Wait until every task is terminal; return their records."""
    ids = list(task_ids)
    await wait_until(lambda: all(manager.get(i).status.is_terminal for i in ids), seconds=seconds)
    return [manager.get(i) for i in ids]


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app` with its lifespan and yield an HTTP client talking to it in process."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checkout_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that must import this checkout's packages (not an editable
    install made from another one): its root first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


@contextmanager
def server_process(
    command: list[str], port: int, *, env: dict[str, str] | None = None, timeout: float = 10
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """Start a server process, wait (bounded) until it answers on `port`, and kill it on the way out.

    The server runs in a process group of its own, and the way out kills the whole group: a server that
    runs the app in worker processes (hypercorn) would otherwise leave them running, orphaned, after its
    master is killed (by the test, or here).
    """
    proc = subprocess.Popen(command, cwd=ROOT, env=checkout_env(env), start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.get("/tasks/metrics")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"{command} did not start") from None
                    time.sleep(0.05)
            yield client, proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # raised when nothing of the group is left
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives a master the test already killed
        proc.wait(10)
        _wait_group_gone(proc.pid, command)


def _wait_group_gone(pgid: int, command: list[str], timeout: float = 10) -> None:
    """Fail loudly if a process of the server's group is still alive (a leak would run on, unseen)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of {command[:4]} outlived the test (process group {pgid})")
        time.sleep(0.05)
