"""examples/supervised_worker.py runs on both backends as a plain program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "supervised_worker.py"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_supervised_worker_example_runs(backend: str) -> None:
    """The example retries the flaky fetch, checkpoints the heartbeat at shutdown and exits 0."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), backend],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # importable even when the project is not installed
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("retry fetch") == 2
    assert "fetch: succeeded after 3 attempts -> fetched https://example.test" in out
    assert "interrupted heartbeat: checkpointed heartbeat" in out
    assert "heartbeat alive: True" in out
    assert "stats: started=2 succeeded=1 interrupted=1" in out
