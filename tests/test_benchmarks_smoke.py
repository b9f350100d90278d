"""Smoke test of the benchmark harness (`python -m benchmarks`): tiny counts, every workload, end to end.

It proves the harness runs and that taskflow completed every task it was given; it never looks at a
timing (figures come from `python -m benchmarks` on a quiet machine, not from tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"1", "2", "3", "4", "5", "6", "7", "8"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """One `--tiny` run of every workload for plain BackgroundTasks and taskflow (no competitor venvs)."""
    out = tmp_path_factory.mktemp("bench") / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--systems", "b1,taskflow", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.slow
def test_report_has_every_workload_with_both_systems(tiny_run: tuple[dict, str]) -> None:
    """The JSON holds the machine, the settings and every workload, each with b1 and taskflow cases."""
    report, _ = tiny_run
    assert {"machine", "settings", "environments", "workloads"} <= set(report)
    assert report["settings"]["tiny"] is True
    assert set(report["workloads"]) == WORKLOADS
    for data in report["workloads"].values():
        assert {"title", "primary", "unit", "lower_is_better", "cases", "targets"} <= set(data)
        assert {case["system"] for case in data["cases"]} == {"b1", "taskflow"}
        for case in data["cases"]:
            assert {"variant", "median", "ratio_vs_b1", "ok", "available", "runs", "errors"} <= set(case)
            assert case["errors"] == [], case["errors"]
            assert case["runs"], f"{case['system']} {case['label']} never ran"


@pytest.mark.slow
def test_every_taskflow_task_completed(tiny_run: tuple[dict, str]) -> None:
    """Each taskflow run passed its own checks: every task ran and settled (or the workload says why not)."""
    report, _ = tiny_run
    for key, data in report["workloads"].items():
        for case in data["cases"]:
            if case["system"] != "taskflow":
                continue
            if not case["available"]:  # wrk missing, or persistence not built yet: said, not faked
                assert case["reason"], f"workload {key} unavailable without a reason"
                assert case["median"].get(data["primary"]) is None
                continue
            assert case["ok"], f"workload {key} {case['label']}: {case['runs'][-1].get('checks')}"
            assert case["median"].get(data["primary"]) is not None


@pytest.mark.slow
def test_table_is_printed(tiny_run: tuple[dict, str]) -> None:
    """The command prints one table per workload and the taskflow targets."""
    _, stdout = tiny_run
    for key in sorted(WORKLOADS):
        assert f"Workload {key}:" in stdout
    assert "taskflow target" in stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "structlog_imported", "provider"),
    [("none", False, "ProxyTracerProvider"), ("both", True, "TracerProvider")],
)
def test_w1_observability_modes_set_up_what_they_say(
    mode: str, structlog_imported: bool, provider: str
) -> None:
    """W1's `--observability none` leaves structlog unimported; `both` imports it and sets an SDK provider."""
    done = subprocess.run(
        [sys.executable, "w1_overhead.py", "--system", "taskflow", "--tiny", "--observability", mode],
        cwd=ROOT / "benchmarks" / "workloads",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    seen = result["checks"]["observability"]
    assert result["checks"]["ok"], result["checks"]
    assert seen["structlog_imported"] is structlog_imported
    assert seen["tracer_provider"] == provider
    assert seen["taskflow_file"] == str(ROOT / "taskflow" / "__init__.py")
