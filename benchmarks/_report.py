"""The machine a run came from, the tables it prints (text or Markdown), and the JSON it writes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, load, interpreter, and the commit measured."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
        # Others may be editing the package while a run measures it: say so next to the commit.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "taskflow", "supervisors"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
        if dirty:
            commit += " (+ uncommitted changes in taskflow/supervisors)"
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, list):
        return "…"
    return str(value)


def workload_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one workload's table."""
    columns = [c for c in data.get("columns", []) if any(c in case["median"] for case in data["cases"])]
    header = ["system", "version", "variant", data["unit"], "x b1", *columns, "checks"]
    rows = []
    for case in data["cases"]:
        median = case["median"]
        if not case["available"]:
            rows.append(
                [
                    case["system"],
                    case["version"] or "-",
                    case["label"],
                    "not available",
                    "-",
                    *["-"] * len(columns),
                    "see note",
                ]
            )
            continue
        if case["errors"] and not case["runs"]:
            rows.append(
                [
                    case["system"],
                    case["version"] or "-",
                    case["label"],
                    "error",
                    "-",
                    *["-"] * len(columns),
                    case["errors"][0][:80],
                ]
            )
            continue
        ratio = case["ratio_vs_b1"]
        rows.append(
            [
                case["system"],
                case["version"] or "-",
                case["label"],
                _fmt(median.get(data["primary"])),
                f"{ratio:.2f}x" if ratio is not None else "-",
                *[_fmt(median.get(c)) for c in columns],
                "ok" if case["ok"] else "FAILED",
            ]
        )
    return header, rows


def render_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)) for line in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x).replace("|", "/") for x in row) + " |" for row in rows]
    return "\n".join(lines)


def render(report: dict[str, Any], markdown: bool = False) -> str:
    """Every workload's table and its targets, as text for the terminal or Markdown for the docs."""
    out = []
    for key, data in report["workloads"].items():
        header, rows = workload_rows(data)
        order = "lower is better" if data["lower_is_better"] else "higher is better"
        repeats = max((c["repeats"] for c in data["cases"]), default=0)
        at = f", at {data['commit']}" if data.get("commit") else ""
        title = f"Workload {key}: {data['title']} ({data['unit']}, {order}; median of {repeats}{at})"
        table = render_markdown(header, rows) if markdown else render_text(header, rows)
        notes = [f"{c['system']}: {c['reason']}" for c in data["cases"] if not c["available"] and c["reason"]]
        notes += [f"{c['system']} {c['label']}: {c['errors'][0][:300]}" for c in data["cases"] if c["errors"]]
        if notes:
            table += "\n\n" + "\n".join(f"Note: {n}" for n in notes)
        out.append(f"### {title}\n\n{table}" if markdown else f"{title}\n{table}")
        if data.get("targets"):
            trows = [
                [t["target"], t["measured"] or "-", {True: "met", False: "MISSED", None: "-"}[t["met"]]]
                for t in data["targets"]
            ]
            theader = ["taskflow target", "measured", ""]
            out.append(render_markdown(theader, trows) if markdown else render_text(theader, trows))
    return "\n\n".join(out)


def write(report: dict[str, Any], path: Path | None) -> Path:
    """Write the JSON (default: results/<timestamp>.json, and results/latest.json beside it)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = path or RESULTS / time.strftime("%Y%m%d-%H%M%S.json")
    text = json.dumps(report, indent=1, default=str)
    target.write_text(text)
    if path is None:
        (RESULTS / "latest.json").write_text(text)
    return target
