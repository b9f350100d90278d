"""`python -m taskflow policies`: the effective named policies, their sources, and invalid configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def _run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKFLOW_")}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "taskflow", "policies", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_prints_policies_found_in_the_working_directory(tmp_path: Path) -> None:
    """It reads taskflow.toml from the working directory and applies environment overrides."""
    (tmp_path / "taskflow.toml").write_text("[policies.emails]\nretries = 3\nretry_on = 'ConnectionError'\n")
    result = _run(tmp_path, TASKFLOW_POLICY_EMAILS_DELAY="1.5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"configuration: {tmp_path / 'taskflow.toml'}" in out
    assert "[policies.emails]" in out
    assert "retries         = 3" in out
    assert "delay           = 1.5" in out and "# environment TASKFLOW_POLICY_EMAILS_DELAY" in out
    assert "retry_on        = ConnectionError" in out
    assert "backoff         = 1.0" in out and "# default" in out


def test_invalid_configuration_exits_2_with_the_message(tmp_path: Path) -> None:
    """An invalid file prints the one message naming file, table and key, and exits 2."""
    path = tmp_path / "other.toml"
    path.write_text("[policies.emails]\nmax_threads = 0\n")
    result = _run(tmp_path, "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"taskflow: invalid configuration: {path}: [policies.emails] max_threads: must be an int >= 1, got 0"
    )


def test_no_configuration(tmp_path: Path) -> None:
    """Without a configuration file it says so."""
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["configuration: none found", "no named policies"]
