"""The app under real servers: uvicorn (asyncio) and hypercorn --worker-class trio, over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, server_process

ROOT = Path(__file__).resolve().parents[2]
SERVERS = {
    "uvicorn-asyncio": lambda port: [
        sys.executable, "-m", "uvicorn", "tests.web.server_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ],
    "hypercorn-trio": lambda port: [
        sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--bind", f"127.0.0.1:{port}",
        "tests.web.server_app:app",
    ],
}  # fmt: skip


@contextmanager
def running_server(
    name: str, tmp_path: Path, grace: float = 1.0
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], Path]]:
    port = free_port()
    summary = tmp_path / "summary.json"
    env = {"TASKFLOW_TEST_SUMMARY": str(summary), "TASKFLOW_TEST_GRACE": str(grace)}
    with server_process(SERVERS[name](port), port, env=env, timeout=5) as (client, proc):
        yield client, proc, summary


def wait_statuses(
    client: httpx.Client, ids: list[str], done: set[str], timeout: float = 15
) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = {i: client.get(f"/tasks/{i}").json() for i in ids}
        if all(t.get("status") in done for t in tasks.values()):
            return tasks
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks did not finish: {tasks}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("server", list(SERVERS))
def test_tasks_run_over_http_and_shutdown_interrupts_the_rest(server: str, tmp_path: Path) -> None:
    """Tasks run with retries under each server; SIGTERM drains, interrupts the rest, and exits in time."""
    with running_server(server, tmp_path, grace=1.0) as (client, proc, summary):
        ids = client.post("/work").json()
        tasks = wait_statuses(client, list(ids.values()), {"success", "failed"})
        flaky = tasks[ids["flaky"]]
        assert flaky["status"] == "success" and flaky["retries_used"] == 1
        expected_lib = "trio" if "trio" in server else "asyncio"
        assert any(expected_lib in line for line in flaky["logs"])
        assert tasks[ids["sync"]]["status"] == "success"
        long_id = client.post("/sleep", params={"seconds": 60}).json()["task_id"]
        wait_statuses(client, [long_id], {"running"})
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        elapsed = time.monotonic() - start
    statuses = json.loads(summary.read_text())
    assert statuses[long_id] == "interrupted"
    assert statuses[ids["flaky"]] == "success"
    assert elapsed < 1.0 + 5.0  # grace + checkpoint deadline + process start/stop slack
