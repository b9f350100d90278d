"""A child process for the multi-process SQLite test: writes, claims keys and orphans, prints what it won.

Usage: python sqlite_worker.py DB_PATH INSTANCE_ID BACKEND ROUNDS PROCESSES

Each worker announces itself with a marker file and waits (bounded) until all have, so the rounds overlap
instead of running one process after another behind interpreter start-up.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio

from taskflow._models import TaskRecord, TaskStatus
from taskflow.stores import SqliteStore


def _barrier(path: str, instance: str, processes: int) -> None:
    Path(f"{path}.ready.{instance}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(path).parent.glob(Path(path).name + ".ready.*"))) < processes:
        if time.monotonic() > deadline:
            raise TimeoutError("the other workers never started")
        time.sleep(0.005)  # polling other processes' marker files, bounded by the deadline


async def main(path: str, instance: str, rounds: int, processes: int) -> None:
    store = SqliteStore(path)
    await store.open()
    await anyio.to_thread.run_sync(_barrier, path, instance, processes)
    await store.heartbeat(instance, ttl=600)
    claimed: list[str] = []
    keys: dict[str, str | None] = {}
    for r in range(rounds):
        own = [TaskRecord(f"{instance}-{r}-{i}", "job", TaskStatus.RUNNING, args=(r, i)) for i in range(5)]
        await store.write(own, owner=instance)
        dead = [TaskRecord(f"orphan-{instance}-{r}-{i}", "job", TaskStatus.PENDING) for i in range(10)]
        await store.write(dead, owner=f"dead-{instance}")
        keys[f"key-{r}"] = await store.claim_idempotency_key(f"key-{r}", f"{instance}-k{r}")
        claimed.extend(c.record.task_id for c in await store.claim_orphans(instance))
    await store.close()
    print(json.dumps({"claimed": claimed, "keys": keys}))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[4]), int(sys.argv[5]), backend=sys.argv[3])
