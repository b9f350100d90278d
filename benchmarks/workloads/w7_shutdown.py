"""Workload 7, shutdown: SIGTERM to exit with 1,000 running tasks and `shutdown_grace=2`.

The script starts itself as a uvicorn server (`--role server`), loads 1,000 tasks in 10 requests (half
finish 1.5 s after they start, half would run for a minute), waits until the server says they run, sends
SIGTERM and times the exit. The server writes a final summary when the app's lifespan has exited (so
after taskflow's drain): records per status for managed systems, body counters for all.
Every accepted task must be accounted for: finished, or visibly INTERRUPTED/requeued. A server that does
not exit by the deadline is killed, and its tasks count as lost.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from _harness import emit, free_port, parser, script_command, serve, wait_for_port
from _sut import MANAGED, Progress, build

GRACE = 2.0
SHORT, LONG = 1.5, 60.0
progress = Progress()


async def sleeper(i: int) -> None:
    progress.started += 1
    await anyio.sleep(SHORT if i % 2 == 0 else LONG)
    progress.done += 1


def run_server(args: argparse.Namespace) -> None:
    sut = build(args.system, {"sleeper": sleeper}, manager_kwargs={"shutdown_grace": GRACE})

    @sut.app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        return {"accepted": sut.accepted, "started": progress.started, "done": progress.done}

    inner = sut.app.router.lifespan_context

    @asynccontextmanager
    async def outermost(app: Any) -> AsyncIterator[Any]:
        # uvicorn re-raises SIGTERM once it has stopped, so the summary is written here, after the
        # app's own lifespan (and with it taskflow's drain or fastapi-taskflow's shutdown) has exited.
        async with inner(app) as state:
            yield state
        summary = {
            "accepted": sut.accepted,
            "started": progress.started,
            "done": progress.done,
            "statuses": sut.statuses() if args.system in MANAGED else {},
        }
        await anyio.Path(args.summary).write_text(json.dumps(summary))

    sut.app.router.lifespan_context = outermost
    serve(sut.app, args.port)


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


def drive(args: argparse.Namespace) -> dict[str, Any]:
    requests, per_request = (2, 10) if args.tiny else (10, 100)
    kill_after = min(args.deadline, GRACE + 2) if args.tiny else args.deadline
    tasks = requests * per_request
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-w7-") as tmp:
        summary_path = Path(tmp) / "summary.json"
        server = subprocess.Popen(
            script_command(
                "w7_shutdown.py",
                "--role",
                "server",
                "--system",
                args.system,
                "--port",
                str(port),
                "--summary",
                str(summary_path),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_port(port, 30, server)
            for r in range(requests):
                _get(port, f"/add/sleeper?n={per_request}&start={r * per_request}")
            # Wait until every task runs (systems that run a request's tasks one by one never get there).
            deadline = time.monotonic() + (1 if args.tiny else 5)
            stats = _get(port, "/bench/stats")
            while stats["started"] < tasks and time.monotonic() < deadline:
                time.sleep(0.02)
                stats = _get(port, "/bench/stats")
        except BaseException:
            server.kill()
            raise
        t0 = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        killed = False
        try:
            _, stderr = server.communicate(timeout=kill_after)
        except subprocess.TimeoutExpired:
            server.kill()
            killed = True
            _, stderr = server.communicate()
        exit_s = time.perf_counter() - t0
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    accounted = None
    if summary is not None:
        statuses = summary["statuses"]
        if args.system in MANAGED:
            accounted = sum(statuses.get(s, 0) for s in ("success", "failed", "interrupted", "cancelled"))
        else:
            accounted = summary["done"]  # the baselines keep no record of what they drop
    lost = tasks - (accounted or 0)
    return {
        "metrics": {
            "exit_s": exit_s if not killed else None,
            "lost_tasks": lost,
            "running_at_sigterm": stats["started"],
        },
        "checks": {
            "ok": not killed and lost == 0,
            "killed_after_s": kill_after if killed else None,
            "summary": summary,
            "server_stderr": stderr[-1500:],
        },
        "counts": {"tasks": tasks, "grace_s": GRACE},
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--role", choices=("driver", "server"), default="driver")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--summary", default="")
    p.add_argument(
        "--deadline", type=float, default=GRACE + 8, help="kill the server after this many seconds"
    )
    args = p.parse_args()
    if args.role == "server":
        run_server(args)
        sys.exit(0)
    emit(args, drive(args))


if __name__ == "__main__":
    main()
