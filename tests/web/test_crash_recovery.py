"""Crash safety with real processes on one SQLite file: kill -9 mid-flood, restart, and takeover by a peer."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, server_process

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def server(
    db: Path, runs: Path, synchronous: str = "FULL"
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """A uvicorn process serving tests.web.server_app on `db` (opened at that SQLite synchronous level)."""
    port = free_port()
    env = {"TASKFLOW_TEST_DB": str(db), "TASKFLOW_TEST_RUNS": str(runs), "TASKFLOW_TEST_GRACE": "1"}
    if synchronous != "FULL":
        env["TASKFLOW_TEST_SYNCHRONOUS"] = synchronous
    command = [sys.executable, "-m", "uvicorn", "tests.web.server_app:app", "--host", "127.0.0.1"]
    with server_process([*command, "--port", str(port), "--log-level", "error"], port, env=env) as running:
        yield running


def wait_all_final(client: httpx.Client, ids: list[str], timeout: float = 30) -> dict[str, str]:
    """Poll until every id is terminal; return id -> status."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {i: client.get(f"/tasks/{i}").json().get("status", "missing") for i in ids}
        if all(s in {"success", "failed", "interrupted", "cancelled"} for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(collections.Counter(statuses.values()))
        time.sleep(0.1)


def read_runs(runs: Path) -> collections.Counter[str]:
    if not runs.exists():
        return collections.Counter()
    return collections.Counter(line.split()[0] for line in runs.read_text().splitlines() if line)


@pytest.mark.slow
@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_kill_9_mid_flood_loses_no_accepted_task(tmp_path: Path, synchronous: str) -> None:
    """SIGKILL while requests stream in; after a restart every accepted id completes or is INTERRUPTED.

    Nothing runs twice unless it is requeue_on_interrupt (those may run again, by design). The same holds
    with the `synchronous="NORMAL"` opt-in: it gives up durability across power cuts, not across a killed
    process (the commits are in the WAL file, which the operating system keeps).
    """
    db, runs = tmp_path / "tasks.db", tmp_path / "runs.txt"
    accepted: dict[str, bool] = {}  # task id -> requeue_on_interrupt
    stop = threading.Event()
    with server(db, runs, synchronous) as (client, proc):

        def flood(requeue: bool) -> None:
            with httpx.Client(base_url=client.base_url, timeout=5) as c:
                while not stop.is_set():
                    try:
                        r = c.post("/durable", params={"seconds": 0.4, "requeue": requeue})
                    except httpx.TransportError:
                        return  # the server died under us: that request was never accepted
                    if r.status_code == 200:
                        accepted[r.json()["task_id"]] = requeue

        threads = [threading.Thread(target=flood, args=(i % 2 == 0,)) for i in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(accepted) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # mid-flood: requests in flight, tasks running and queued
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    assert len(accepted) >= 60
    with server(db, runs, synchronous) as (client, _):
        statuses = wait_all_final(client, list(accepted))
    counts = collections.Counter(statuses.values())
    assert set(counts) <= {"success", "interrupted"}, counts
    assert counts["success"] > 0
    executions = read_runs(runs)
    for task_id, requeue in accepted.items():
        if statuses[task_id] == "success":
            assert executions[task_id] >= 1
        if not requeue:
            assert executions[task_id] <= 1, (task_id, executions[task_id])


@pytest.mark.slow
def test_a_live_peer_takes_over_the_tasks_of_a_killed_one(tmp_path: Path) -> None:
    """Two processes share a file; the survivor runs the killed one's tasks once its heartbeat expires."""
    db, runs = tmp_path / "tasks.db", tmp_path / "runs.txt"
    with server(db, runs) as (survivor, survivor_proc), server(db, runs) as (victim, victim_proc):
        ids = [
            victim.post("/durable", params={"seconds": 0.5, "requeue": True}).json()["task_id"]
            for _ in range(12)
        ]
        time.sleep(0.2)  # some are running, the rest wait for one of the 4 slots
        victim_proc.send_signal(signal.SIGKILL)
        victim_proc.wait(10)
        statuses = wait_all_final(survivor, ids)
    assert set(statuses.values()) == {"success"}
    pids_by_task = collections.defaultdict(set)
    for line in runs.read_text().splitlines():
        task_id, pid = line.split()
        pids_by_task[task_id].add(int(pid))
    assert all(survivor_proc.pid in pids_by_task[i] for i in ids)
