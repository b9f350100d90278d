"""The demo app behind `taskflow demo`: a few kinds of tasks and a light stream of simulated requests."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI

from .._context import get_task_context, task_log
from ._admin import TaskAdmin
from ._background import ManagedBackgroundTasks
from ._manager import TaskManager


def build_demo_app(
    *, db: str | None = None, traffic: bool = True, traffic_interval: float = 1.5, **manager_options: Any
) -> FastAPI:
    """A FastAPI app with fast, slow, flaky, failing and sync tasks; `traffic` adds simulated requests.

    With `db`, every task is kept in that SQLite file: stop the demo while tasks run and start it again,
    and the unfinished ones run (reports) or show as interrupted, with all history intact.
    """
    manager_options.setdefault("shutdown_grace", 2.0)  # short, so a Ctrl-C shows reports resuming
    task_manager = TaskManager(
        snapshot_db=db,
        requeue_pending=db is not None,
        max_concurrent_tasks=50,
        max_sync_threads=4,
        **manager_options,
    )

    @task_manager.task()
    async def send_welcome_email(address: str) -> None:
        task_log(f"rendering the welcome email for {address}")
        await anyio.sleep(random.uniform(0.05, 0.3))
        task_log("sent", level="info", provider="demo-smtp")

    @task_manager.task(timeout=20, requeue_on_interrupt=True)
    async def build_report(report_id: int) -> None:
        for step in ("query", "aggregate", "render"):
            task_log(f"report {report_id}: {step}")
            await anyio.sleep(random.uniform(0.5, 1.5))

    @task_manager.task(retries=3, delay=0.5, backoff=2.0, jitter=0.2)
    async def charge_card(order_id: int) -> None:
        ctx = get_task_context()
        task_log(f"charging order {order_id} (attempt {ctx.attempt + 1 if ctx else 1})")
        await anyio.sleep(0.1)
        if random.random() < 0.5:
            raise ConnectionError("payment gateway timed out")

    @task_manager.task(retries=1, delay=0.2)
    async def sync_inventory(sku: str) -> None:
        task_log(f"syncing {sku}", level="warning")
        raise RuntimeError(f"warehouse API rejected SKU {sku!r}")

    @task_manager.task()
    def resize_image(name: str) -> None:
        task_log(f"resizing {name} in a worker thread")
        time.sleep(random.uniform(0.1, 0.4))

    kinds: dict[str, tuple[Callable[..., Any], Callable[[int], tuple[Any, ...]]]] = {
        "signup": (send_welcome_email, lambda n: (f"user{n}@example.com",)),
        "report": (build_report, lambda n: (n,)),
        "order": (charge_card, lambda n: (n,)),
        "inventory": (sync_inventory, lambda n: (f"SKU-{n}",)),
        "upload": (resize_image, lambda n: (f"photo-{n}.jpg",)),
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if db is not None:
            metrics = await task_manager.actions.metrics()
            requeued = sum(
                1 for r in task_manager.table.records() if (r.status_reason or "").startswith("requeued")
            )
            print(
                f"history in {db}: {metrics['total']} tasks; {requeued} resumed from the last run", flush=True
            )
        async with anyio.create_task_group() as tg:
            if traffic:
                tg.start_soon(_simulate_traffic, task_manager, kinds, traffic_interval)
            yield
            tg.cancel_scope.cancel()

    app = FastAPI(title="taskflow demo", lifespan=lifespan)
    TaskAdmin(app, task_manager, auto_install=True)

    @app.post("/demo/{kind}")
    async def enqueue(kind: str, background_tasks: ManagedBackgroundTasks, n: int = 1) -> Any:
        if kind not in kinds:
            return {"error": f"kind must be one of {sorted(kinds)}"}
        func, make_args = kinds[kind]
        return {"task_id": background_tasks.add_task(func, *make_args(n), tags={"kind": kind})}

    app.state.task_manager = task_manager
    return app


async def _simulate_traffic(task_manager: TaskManager, kinds: dict[str, Any], interval: float) -> None:
    # Goes through the same path as a request: submit, then dispatch as Starlette would after the response.
    weights = {"signup": 5, "order": 4, "upload": 3, "report": 1, "inventory": 1}
    n = 0
    while True:
        n += 1
        kind = random.choices(list(weights), weights=list(weights.values()))[0]
        func, make_args = kinds[kind]
        task_id, created = task_manager.launcher.submit(
            func, make_args(n), {}, tags={"kind": kind, "source": "simulated"}
        )
        if created:
            await task_manager.launcher.start(task_id)
        await anyio.sleep(random.uniform(0.3, 1.0) * interval)
