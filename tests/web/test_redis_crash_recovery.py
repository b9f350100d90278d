"""Crash safety with real processes on one Redis prefix: a peer killed (-9) mid-flood, the survivor takes
its tasks over."""

from __future__ import annotations

import collections
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, server_process
from tests.redis_service import REDIS_URL, redis_prefix
from tests.web.test_crash_recovery import read_runs, wait_all_final
from tests.web.test_servers import SERVERS

pytestmark = [pytest.mark.slow, pytest.mark.services]

FLOOD = 60  # accepted tasks before the kill
FLOOD_SECONDS = 20  # the flood's bound, whatever the machine's speed


@contextmanager
def server(prefix: str, runs: Path, kind: str) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """A server process (`SERVERS[kind]`) serving tests.web.server_app on the Redis `prefix` (TTL 1 s)."""
    port = free_port()
    env = {
        "TASKFLOW_TEST_REDIS_URL": REDIS_URL,
        "TASKFLOW_TEST_REDIS_PREFIX": prefix,
        "TASKFLOW_TEST_RUNS": str(runs),
        "TASKFLOW_TEST_GRACE": "1",
    }
    with server_process(SERVERS[kind](port), port, env=env) as running:
        yield running


def test_the_survivor_takes_over_a_peer_killed_mid_flood(tmp_path: Path) -> None:
    """Two processes on one prefix (the survivor on trio, the victim on asyncio), one killed (-9) under a
    flood of durable tasks: every accepted task ends SUCCESS or INTERRUPTED, run by the survivor where
    needed, and none runs twice unless it is `requeue_on_interrupt`."""
    runs = tmp_path / "runs.txt"
    accepted: dict[str, bool] = {}  # task id -> requeue_on_interrupt
    stop = threading.Event()
    with redis_prefix() as prefix, server(prefix, runs, "hypercorn-trio") as (survivor, _):
        with server(prefix, runs, "uvicorn-asyncio") as (victim, victim_proc):

            def flood(requeue: bool) -> None:
                with httpx.Client(base_url=victim.base_url, timeout=5) as c:
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
            deadline = time.monotonic() + FLOOD_SECONDS
            while len(accepted) < FLOOD and time.monotonic() < deadline:
                time.sleep(0.02)
            victim_proc.send_signal(signal.SIGKILL)  # requests in flight, tasks running and queued
            victim_proc.wait(10)
            stop.set()
            for t in threads:
                t.join(10)
        assert len(accepted) >= FLOOD
        statuses = wait_all_final(survivor, list(accepted))
    counts = collections.Counter(statuses.values())
    assert set(counts) <= {"success", "interrupted"}, counts
    executions = read_runs(runs)
    by_pid = collections.defaultdict(set)
    for line in runs.read_text().splitlines():
        task_id, pid = line.split()
        by_pid[int(pid)].add(task_id)
    # hypercorn runs the app in a worker process of its own: the survivor's runs are the victim's peer's.
    taken_over = set().union(*(ids for pid, ids in by_pid.items() if pid != victim_proc.pid))
    # (It may also run a task committed just before the kill whose response never left: not in `accepted`.)
    assert taken_over & set(accepted), "the survivor took nothing over"
    for task_id, requeue in accepted.items():
        if statuses[task_id] == "success":
            assert executions[task_id] >= 1
        if requeue:
            assert statuses[task_id] == "success", task_id  # re-run by the survivor if it was cut short
        else:
            assert executions[task_id] <= 1, (task_id, executions[task_id])
