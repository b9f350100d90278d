"""Several processes on one SQLite file: no "database is locked" reaches them, and claims stay exclusive."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio

from taskflow.stores import SqliteStore
from tests.helpers import checkout_env

WORKER = Path(__file__).with_name("sqlite_worker.py")
PROCESSES = 3
ROUNDS = 30
ARGS = (ROUNDS, PROCESSES)


async def _claim_leftovers(path: Path) -> list[str]:
    store = SqliteStore(path)
    await store.open()
    try:
        await store.heartbeat("parent", ttl=600)
        return [c.record.task_id for c in await store.claim_orphans("parent")]
    finally:
        await store.close()


def test_processes_share_one_file(tmp_path: Path) -> None:
    """3 processes (asyncio and trio) hammer one file at once: none fails, each orphan and key goes to one."""
    path = tmp_path / "shared.db"
    children = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(path), f"p{n}", ("asyncio", "trio")[n % 2], *map(str, ARGS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=checkout_env(),
        )
        for n in range(PROCESSES)
    ]
    results = []
    try:
        for child in children:
            out, err = child.communicate(timeout=120)  # bounded: a deadlock fails the test, never hangs it
            assert child.returncode == 0, err
            assert "locked" not in err.lower(), err
            results.append(json.loads(out))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    leftovers = anyio.run(_claim_leftovers, path)  # sync test: the workers already cover both backends

    claims = [r["claimed"] for r in results] + [leftovers]
    every = [task_id for batch in claims for task_id in batch]
    assert len(every) == len(set(every)), "an orphan was claimed twice"
    expected = {f"orphan-p{n}-{r}-{i}" for n in range(PROCESSES) for r in range(ROUNDS) for i in range(10)}
    assert set(every) == expected
    for r in range(ROUNDS):
        outcomes = [res["keys"][f"key-{r}"] for res in results]
        winners = [f"p{n}-k{r}" for n, holder in enumerate(outcomes) if holder is None]
        assert len(winners) == 1
        assert all(holder in (None, winners[0]) for holder in outcomes)
