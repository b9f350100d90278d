"""`taskflow demo` (the README's first command) serves tasks, stops on Ctrl-C, and resumes after a restart."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_demo(port: int, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "taskflow", "demo", "--port", str(port), "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_metrics(client: httpx.Client, predicate: object, timeout: float = 30) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    metrics: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            metrics = client.get("/tasks/metrics").json()
        except httpx.TransportError:
            metrics = {}
        if metrics and predicate(metrics):  # type: ignore[operator]
            return metrics
        time.sleep(0.2)
    raise AssertionError(f"the demo did not get there: {metrics}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=20)
    return output


@pytest.mark.slow
def test_demo_runs_tasks_stops_cleanly_and_resumes_after_a_restart(tmp_path: Path) -> None:
    """Simulated requests make tasks; Ctrl-C exits 0; a report cut short resumes on the next start."""
    port, db = free_port(), tmp_path / "demo.db"
    proc = start_demo(port, db)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_metrics(client, lambda m: m["total"] >= 3 and m["success"] >= 1)
            report = client.post("/demo/report", params={"n": 99}).json()["task_id"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if client.get(f"/tasks/{report}").json()["status"] == "running":
                    break
                time.sleep(0.05)
        output = stop(proc)  # a report takes 1.5-4.5 s; the demo's grace is 2 s: it may be cut short
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/tasks" in output and "dashboard" in output

    proc = start_demo(port, db)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_metrics(client, lambda m: m["total"] >= 1)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                detail = client.get(f"/tasks/{report}").json()
                if detail["status"] == "success":
                    break
                time.sleep(0.2)
        output = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert detail["status"] == "success", detail
    assert "history in" in output
