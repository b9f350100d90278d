"""`taskflow demo` (the README's first command) serves tasks with simulated traffic and stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.web.test_servers import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_tasks_and_stops_cleanly_on_ctrl_c() -> None:
    """The demo prints its URLs, simulated requests produce tasks, and SIGINT ends it with exit code 0."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskflow", "demo", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        metrics: dict[str, float] = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            while time.monotonic() < deadline:
                try:
                    metrics = client.get("/tasks/metrics").json()
                except httpx.TransportError:
                    metrics = {}
                if metrics.get("total", 0) >= 3 and metrics.get("success", 0) >= 1:
                    break
                time.sleep(0.2)
            assert client.post("/demo/upload", params={"n": 5}).json()["task_id"]
        assert metrics.get("total", 0) >= 3, metrics
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/tasks" in output and "dashboard" in output
