"""Helpers shared by the taskflow tests: app factories and bounded waits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import anyio
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from taskflow import TaskManager, TaskRecord


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
