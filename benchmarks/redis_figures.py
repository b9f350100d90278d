"""The Redis store's figures in one bounded run: round trips/s, batch writes, W3 (persisted tasks) on Redis.

    python benchmarks/redis_figures.py [--url redis://127.0.0.1:6379/13] [--requests 100] [--tasks 20]

Every figure is measured on asyncio and on trio, through `RedisStore` (redis-py's sync client on worker
threads, the client path the store uses). W3 is workload 3's shape (`benchmarks/workloads/w3_persist.py`):
R requests x N `persist=True` tasks through a TaskManager app, until every task has succeeded, here with
`snapshot_backend=RedisStore(...)`; the SQLite figure of the same shape is printed next to it. Keys live
under a fresh prefix and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent / "workloads"))

from _harness import client_for, wait_until
from _sut import Progress, build

from taskflow import TaskRecord, TaskStatus
from taskflow.stores import RedisStore, SqliteStore, TaskStore

progress = Progress()


async def persisted(i: int) -> None:
    progress.done += 1


async def round_trips(store: RedisStore, count: int) -> float:
    """get() of a missing id per second: one command and the thread hop, what every store call pays."""
    t0 = time.perf_counter()
    for _ in range(count):
        await store.get("missing")
    return count / (time.perf_counter() - t0)


async def batch_writes(store: TaskStore, count: int, batch: int) -> float:
    """Records per second written in batches of `batch` (the group commit's unit)."""
    now = datetime.now(UTC)
    records = [
        TaskRecord(task_id=uuid.uuid4().hex, func_name="job", status=TaskStatus.PENDING, created_at=now)
        for _ in range(count)
    ]
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        await store.write(records[start : start + batch], owner="bench")
    return count / (time.perf_counter() - t0)


async def w3(backend: TaskStore, requests: int, per_request: int) -> float:
    """Workload 3 on `backend`: tasks/s from the first request until every task succeeded."""
    sut = build(
        "taskflow",
        {"persisted": persisted},
        manager_kwargs={"snapshot_backend": backend},
        task_kwargs={"persist": True},
    )
    base = progress.done
    async with client_for(sut) as client:
        t0 = time.perf_counter()
        for r in range(requests):
            response = await client.get("/add/persisted", params={"n": per_request, "start": r * per_request})
            if response.status_code != 200:
                raise RuntimeError(f"/add/persisted answered {response.status_code}")
        if not await wait_until(lambda: progress.done - base >= requests * per_request, 60):
            raise RuntimeError("the tasks did not all run within 60 s")
        await wait_until(sut.settled, 30, poll=0.001)
        elapsed = time.perf_counter() - t0
    return requests * per_request / elapsed


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"taskflow-bench:{uuid.uuid4().hex[:8]}"
    store = RedisStore(args.url, prefix=prefix)
    out: dict[str, Any] = {}
    try:
        async with store:
            out["round_trips_per_s"] = round(await round_trips(store, args.pings))
            out["records_per_s_batch_1000"] = round(await batch_writes(store, args.records, 1000))
            out["records_per_s_batch_1"] = round(await batch_writes(store, min(args.records, 2000), 1))
        out["w3_redis_tasks_per_s"] = round(
            await w3(RedisStore(args.url, prefix=prefix + ":w3"), args.requests, args.tasks)
        )
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = SqliteStore(Path(tmp) / "tasks.db")
            out["w3_sqlite_tasks_per_s"] = round(await w3(sqlite, args.requests, args.tasks))
    finally:
        import redis

        with redis.Redis.from_url(args.url) as client:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="redis://127.0.0.1:6379/13")
    p.add_argument("--pings", type=int, default=3000)
    p.add_argument("--records", type=int, default=10000)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--tasks", type=int, default=20)
    args = p.parse_args()
    results = {backend: anyio.run(measure, args, backend=backend) for backend in ("asyncio", "trio")}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
