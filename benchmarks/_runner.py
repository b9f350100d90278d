"""Runs the cases: each repeat is a fresh process, cases interleaved, and medians taken at the end.

Interleaving (every case once, then every case again, in alternating order) spreads the drift of a
shared machine over all systems instead of loading it onto whichever ran last.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._environments import Environment
from ._plan import Case, Workload, reference_for

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD_DIR = ROOT / "benchmarks" / "workloads"


@dataclass
class CaseResult:
    """Every run of one case and their medians."""

    case: Case
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return any(r.get("available", True) for r in self.runs)

    @property
    def reason(self) -> str | None:
        return next((r["reason"] for r in self.runs if r.get("reason")), None)

    @property
    def ok(self) -> bool:
        """Every run completed and passed its own checks (every task ran, settled, counted)."""
        return bool(self.runs) and not self.errors and all(r.get("checks", {}).get("ok") for r in self.runs)

    def median(self) -> dict[str, Any]:
        """Median of each numeric metric over the runs that reported it; lists come from the last run."""
        out: dict[str, Any] = {}
        keys = {k for r in self.runs for k in r.get("metrics", {})}
        for key in sorted(keys):
            values = [r["metrics"].get(key) for r in self.runs]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numbers and len(numbers) * 2 > len(values):  # a majority of runs measured it
                out[key] = statistics.median(numbers)
            elif values and isinstance(values[-1], list):
                out[key] = values[-1]
            else:
                out[key] = None
        return out

    def to_json(self, reference: CaseResult | None, primary: str) -> dict[str, Any]:
        median = self.median()
        ratio = None
        if reference is not None:
            mine, theirs = median.get(primary), reference.median().get(primary)
            if isinstance(mine, int | float) and isinstance(theirs, int | float) and theirs:
                ratio = mine / theirs
        return {
            "system": self.case.system,
            "variant": dict(self.case.variant),
            "label": self.case.label,
            "version": next((r.get("version") for r in self.runs if r.get("version")), None),
            "available": self.available,
            "reason": self.reason,
            "ok": self.ok,
            "median": median,
            "ratio_vs_b1": ratio,
            "repeats": len(self.runs),
            "errors": self.errors,
            "runs": self.runs,
        }


def _env_for(case: Case) -> dict[str, str]:
    """The workload's environment: taskflow is imported from this checkout (the scripts run from their
    own directory, where an editable install elsewhere would otherwise win)."""
    env = dict(os.environ)
    if case.system == "taskflow":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_case(case: Case, workload: Workload, env: Environment, extra: list[str]) -> dict[str, Any]:
    """Run one case once in `env`'s interpreter; raises RuntimeError with the tail of stderr on failure."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [env.python, str(WORKLOAD_DIR / workload.script), *case.argv(), "--out", str(out), *extra]
        try:
            done = subprocess.run(
                cmd, env=_env_for(case), capture_output=True, text=True, timeout=workload.timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"timed out after {workload.timeout:.0f} s") from exc
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-1500:]}")
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def run_workload(
    workload: Workload,
    cases: list[Case],
    envs: dict[str, Environment],
    *,
    repeats: int,
    extra: list[str],
    log: Callable[[str], None],
) -> list[CaseResult]:
    """Run `cases` `repeats` times, interleaved; a case that errors is recorded and the others go on."""
    results = {case: CaseResult(case) for case in cases}
    for rep in range(repeats):
        order = cases if rep % 2 == 0 else list(reversed(cases))
        for case in order:
            result = results[case]
            if result.runs and not result.available:
                continue  # "not available" does not change between repeats
            t0 = time.monotonic()
            try:
                run = run_case(case, workload, envs[case.system], extra)
            except RuntimeError as exc:
                result.errors.append(str(exc))
                log(f"  [{rep + 1}/{repeats}] {case.system:<10} {case.label:<28} ERROR {str(exc)[:200]}")
                continue
            result.runs.append(run)
            value = run.get("metrics", {}).get(workload.primary)
            shown = f"{value:,.2f} {workload.unit}" if isinstance(value, int | float) else "n/a"
            flag = "" if run.get("checks", {}).get("ok") else "  (checks failed)"
            log(
                f"  [{rep + 1}/{repeats}] {case.system:<10} {case.label:<28} {shown}{flag}"
                f"  ({time.monotonic() - t0:.1f} s)"
            )
    return [results[c] for c in cases]


def summarise(workload: Workload, results: list[CaseResult]) -> dict[str, Any]:
    """The JSON of one workload: every case with its medians and its ratio to b1."""
    by_case = {r.case: r for r in results}
    cases = tuple(by_case)
    rows = []
    for result in results:
        ref = reference_for(result.case, cases)
        rows.append(result.to_json(by_case.get(ref) if ref is not None else None, workload.primary))
    return {
        "title": workload.title,
        "primary": workload.primary,
        "unit": workload.unit,
        "lower_is_better": workload.lower_is_better,
        "cases": rows,
    }
