"""The `taskflow` command line: `--version`, help for every option, and the demo on trio (hypercorn)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import httpx
import pytest

import taskflow
from taskflow.web._cli import _parser
from tests.helpers import ROOT, free_port


def test_version_prints_the_package_version() -> None:
    """`python -m taskflow --version` prints taskflow's version (from the package metadata) and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "taskflow", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"taskflow {taskflow.__version__}"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_every_option_has_help_text() -> None:
    """Each option of each command explains itself in `--help`."""
    parsers = _parsers(_parser())
    assert [p.prog for p in parsers] == ["taskflow", "taskflow demo", "taskflow policies"]
    silent = [
        f"{p.prog} {'/'.join(a.option_strings) or a.dest}"
        for p in parsers
        for a in p._actions
        if not a.help or a.help == argparse.SUPPRESS
    ]
    assert silent == []


@pytest.mark.slow
def test_demo_on_trio_serves_the_dashboard_and_runs_tasks() -> None:
    """`taskflow demo --backend trio` serves with hypercorn, runs simulated tasks, and stops on Ctrl-C."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskflow", "demo", "--backend", "trio", "--port", str(port), "--memory"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            metrics: dict[str, int] = {}
            dashboard = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    dashboard = client.get("/tasks/dashboard")
                    metrics = client.get("/tasks/metrics").json()
                except httpx.TransportError:
                    pass
                if metrics.get("success", 0) >= 1:
                    break
                time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert dashboard is not None and dashboard.status_code == 200, output
    assert "hypercorn" in dashboard.headers.get("server", ""), dashboard.headers
    assert metrics.get("success", 0) >= 1, (metrics, output)
    assert proc.returncode == 0, output
    assert "taskflow demo on trio (hypercorn)" in output
