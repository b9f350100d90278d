"""Workload 2, HTTP load: a server on 127.0.0.1 and `wrk` at 16 connections, one small async task a request.

The server is uvicorn (asyncio, httptools) or hypercorn with its asyncio or its trio worker (`--server`).

The script starts itself as the server (`--role server`, same interpreter, so the same venv), waits for
the port, warms up, runs `wrk --latency` for `--duration` seconds, asks the server whether every task it
accepted has finished, then sends SIGTERM. Everything is bounded: wrk by its duration, the server by a
deadline after which it is killed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from _harness import SERVERS, emit, free_port, parser, script_command, serve, wait_for_port
from _sut import MANAGED, Progress, build

WRK_MISSING = "wrk is not installed: `apt-get install -y wrk` (Debian package `wrk`)"
progress = Progress()


async def small(i: int) -> None:
    progress.done += 1


def run_server(args: argparse.Namespace) -> None:
    sut = build(args.system, {"small": small}, injection=args.injection)

    @sut.app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        return {
            "accepted": sut.accepted,
            "done": progress.done,
            "settled": sut.settled(),
            "http": os.environ.get("BENCH_HTTP"),
            "statuses": sut.statuses(),
        }

    serve(sut.app, args.port, args.server)


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


def _to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s and the p50/p99 latency (ms) from `wrk --latency` output."""
    out: dict[str, float] = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}  # type: ignore[union-attr]
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.MULTILINE)
        out[key] = _to_ms(match.group(1)) if match else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = float(errors.group(1)) if errors else 0.0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = float(sum(int(g) for g in socket_errors.groups())) if socket_errors else 0.0
    return out


def wrk(port: int, duration: float, connections: int) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "5s",
        f"http://127.0.0.1:{port}/add/small?n=1",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=True)
    return parse_wrk(done.stdout)


def drive(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"available": False, "reason": WRK_MISSING}
    duration, warmup = (1.0, 0.0) if args.tiny else (args.duration, args.warmup)
    port = free_port()
    server = subprocess.Popen(
        script_command(
            "w2_http.py",
            "--role",
            "server",
            "--system",
            args.system,
            "--port",
            str(port),
            "--injection",
            args.injection,
            "--server",
            args.server,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, 30, server)
        if warmup:
            wrk(port, warmup, args.connections)
        before = _get(port, "/bench/stats")
        metrics = wrk(port, duration, args.connections)
        deadline = time.monotonic() + 15
        stats = _get(port, "/bench/stats")
        while not stats["settled"] or stats["done"] < stats["accepted"]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            stats = _get(port, "/bench/stats")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, stderr = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
    accepted = stats["accepted"] - before["accepted"]
    ok = stats["done"] == stats["accepted"] and stats["settled"] and metrics["non_2xx"] == 0
    if args.system in MANAGED:
        ok = ok and stats["statuses"].get("success") == stats["accepted"]
    return {
        "metrics": metrics,
        "checks": {
            "ok": ok,
            "accepted": accepted,
            "statuses": stats["statuses"],
            "server_stderr": stderr[-2000:],
        },
        "counts": {
            "duration_s": duration,
            "connections": args.connections,
            "uvicorn_http": stats.get("http"),
        },
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--role", choices=("driver", "server"), default="driver")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--injection", choices=("depends", "annotation"), default="depends")
    p.add_argument("--server", choices=SERVERS, default="uvicorn")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args()
    if args.role == "server":
        run_server(args)
        sys.exit(0)
    emit(args, drive(args))


if __name__ == "__main__":
    main()
