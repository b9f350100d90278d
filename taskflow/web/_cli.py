"""The `taskflow` command line: `taskflow demo` runs the demo app under uvicorn."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `taskflow` console script and of `python -m taskflow`."""
    parser = argparse.ArgumentParser(prog="taskflow", description="Supervised background tasks for FastAPI.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the demo app (tasks, simulated traffic, the JSON API)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-traffic", action="store_true", help="do not simulate requests")
    demo.add_argument(
        "--db", default="taskflow-demo.db", help="SQLite file that keeps every task (default: %(default)s)"
    )
    demo.add_argument("--memory", action="store_true", help="keep tasks in memory only (no SQLite file)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _run_demo(
            args.host, args.port, db=None if args.memory else args.db, traffic=not args.no_traffic
        )
    return 2  # pragma: no cover  (argparse rejects unknown commands)


def _run_demo(host: str, port: int, *, db: str | None, traffic: bool) -> int:
    try:
        import uvicorn
    except ImportError:
        print("The demo needs uvicorn: pip install 'anyio-taskflow[demo]'", file=sys.stderr)
        return 1
    from ._demo import build_demo_app

    app = build_demo_app(db=db, traffic=traffic)
    base = f"http://{host}:{port}"
    print(
        "taskflow demo\n"
        f"  tasks API:   {base}/tasks\n"
        f"  metrics:     {base}/tasks/metrics\n"
        f"  supervision: {base}/tasks/supervision\n"
        f"  dashboard:   {base}/tasks/dashboard\n"
        f"  add a task:  curl -X POST {base}/demo/order?n=42\n"
        f"  tasks kept in: {db or 'memory only'}\n"
        "Press Ctrl-C to stop: running tasks get 2 s to finish; unfinished reports resume on the next start.",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
