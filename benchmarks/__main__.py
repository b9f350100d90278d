"""`python -m benchmarks`: run the workloads side by side, print the tables, write the JSON.

    python -m benchmarks                      # everything, 5 repeats (about an hour on 2 cores)
    python -m benchmarks --quick              # 1 repeat, shorter wrk and memory runs
    python -m benchmarks -w 1,6 -s b1,taskflow --repeats 3
    python -m benchmarks --tiny               # tiny counts: proves the harness works, measures nothing

Results go to benchmarks/results/<timestamp>.json (and latest.json); `--markdown` prints the tables
as they appear in docs/benchmarks.md, and `--render FILE.json` prints a saved run again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from . import _report
from ._environments import Environment, competitor, this_environment
from ._plan import COMPETITORS, SYSTEMS, WORKLOADS
from ._runner import run_workload, summarise
from ._targets import CHECKS


def _csv(choices: tuple[str, ...] | list[str]) -> Any:
    def parse(text: str) -> list[str]:
        picked = [x.strip() for x in text.split(",") if x.strip()]
        unknown = [x for x in picked if x not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; pick from {', '.join(choices)}")
        return picked

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "-w",
        "--workloads",
        type=_csv(list(WORKLOADS)),
        default=list(WORKLOADS),
        help="comma-separated workload numbers (default: all)",
    )
    p.add_argument(
        "-s",
        "--systems",
        type=_csv(SYSTEMS),
        default=list(SYSTEMS),
        help=f"comma-separated systems (default: {','.join(SYSTEMS)})",
    )
    p.add_argument("--repeats", type=int, help="runs per case, medians reported (default 5; --quick 1)")
    p.add_argument("--quick", action="store_true", help="1 repeat, 3 s of wrk, 20,000-task memory runs")
    p.add_argument("--tiny", action="store_true", help="tiny counts, 1 repeat: checks the harness end to end")
    p.add_argument("--refresh-venvs", action="store_true", help="remake the fastapi-taskflow venvs")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    p.add_argument("--out", type=Path, help="write the JSON here instead of benchmarks/results/")
    p.add_argument("--render", type=Path, metavar="JSON", help="print the tables of a saved run; run nothing")
    return p.parse_args(argv)


def environments(systems: list[str], refresh: bool) -> dict[str, Environment]:
    here = this_environment()
    envs = {s: here for s in systems if s not in COMPETITORS}
    for system in systems:
        if system in COMPETITORS:
            envs[system] = competitor(COMPETITORS[system], refresh=refresh, log=_log)
    return envs


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _retarget(report: dict[str, Any]) -> dict[str, Any]:
    """A saved run with its target rows computed again from its medians, by today's checks (a check whose
    case lookup changed since the run still reads the run's own figures)."""
    for key, data in report.get("workloads", {}).items():
        cases = data.get("cases", [])
        if key in CHECKS and any(c.get("system") == "taskflow" for c in cases):
            medians = {
                (c["system"], tuple(c["variant"].items())): c["median"] for c in cases if c.get("median")
            }
            data["targets"] = CHECKS[key](medians)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        print(_report.render(_retarget(json.loads(args.render.read_text())), markdown=args.markdown))
        return 0
    repeats = args.repeats or (1 if args.quick or args.tiny else 5)
    if "2" in args.workloads and shutil.which("wrk") is None:
        _log("workload 2 needs wrk: `apt-get install -y wrk`; reported missing until then")
    envs = environments(args.systems, args.refresh_venvs)
    report: dict[str, Any] = {
        "machine": _report.machine(),
        "settings": {"repeats": repeats, "quick": args.quick, "tiny": args.tiny},
        "environments": {s: e.info for s, e in envs.items()},
        "workloads": {},
    }
    for key in args.workloads:
        workload = WORKLOADS[key]
        cases = [c for c in workload.cases if c.system in args.systems]
        extra = ["--tiny"] if args.tiny else list(workload.quick_args) if args.quick else []
        _log(f"workload {key}: {workload.title} ({len(cases)} cases x {repeats})")
        commit = _report.machine()["commit"]  # the tree may move during a long run: pin each workload
        results = run_workload(workload, cases, envs, repeats=repeats, extra=extra, log=_log)
        data = summarise(workload, results)
        data["commit"] = commit
        data["columns"] = list(workload.columns)
        medians = {(r.case.system, r.case.variant): r.median() for r in results if r.runs}
        data["targets"] = CHECKS[key](medians) if "taskflow" in args.systems else []
        report["workloads"][key] = data
    report["machine"]["load_average_end"] = _report.machine()["load_average"]
    path = _report.write(report, args.out)
    print(_report.render(report, markdown=args.markdown))
    _log(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
