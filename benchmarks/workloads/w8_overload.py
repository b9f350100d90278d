"""Workload 8, overload: 200 clients send 20,000 tasks in bursts to uvicorn on 127.0.0.1 while a probe calls
a plain route.

Three processes, so none measures through another's load: the server (`--role server`, uvicorn), the probe
(`--role probe`: one keep-alive connection calling `GET /bench/health` every 10 ms, timing each call), and
this driver: 5 bursts, each one request from each of 200 keep-alive clients at once (`GET /flood?n=20&
start=`, every task a distinct index), half a second apart. Each task sleeps `--task-ms` milliseconds. The
probe's figures cover the flood until every accepted task has run.

Reported: the probe's p50/p99/max during the flood (and its p99 before it, idle), the server's peak RSS and
open file descriptors (sampled every 20 ms in the server), tasks accepted, rejected (taskflow's
`TaskRejected`, answered 429) and run, and the checks: nothing accepted lost, nothing run twice.

Variants for taskflow: `defaults` (a plain `TaskManager()`), `bounded` (a `default` queue of concurrency
256 and max_size 2,000, `max_pending=4,000`): the flood is refused past the bounds instead of being held.
Everything is bounded in time: the flood by `--deadline`, the server by a kill after SIGTERM.
No `from __future__ import annotations`: FastAPI must see the route closures' real annotations.
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import anyio
from _harness import GcPauses, emit, free_port, parser, script_command, serve, wait_for_port
from _sut import MANAGED, build

ran: Counter[int] = Counter()
TASK_SECONDS = 0.01


async def work(i: int) -> None:
    ran[i] += 1
    await anyio.sleep(TASK_SECONDS)


def _manager_kwargs(system: str, variant: str) -> dict[str, Any]:
    if system != "taskflow" or variant != "bounded":
        return {}
    from taskflow import QueueConfig

    return {"queues": {"default": QueueConfig(concurrency=256, max_size=2_000)}, "max_pending": 4_000}


class Peaks:
    """The server's peak RSS (from the kernel) and open file descriptors (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.fds = 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            self.fds = max(self.fds, len(os.listdir("/proc/self/fd")))
            time.sleep(0.02)


def run_server(args: argparse.Namespace) -> None:
    global TASK_SECONDS
    TASK_SECONDS = args.task_ms / 1000
    sut = build(args.system, {"work": work}, manager_kwargs=_manager_kwargs(args.system, args.variant))
    peaks = Peaks()
    pauses = GcPauses().__enter__()  # for the life of the server
    counts = {"accepted": 0, "rejected": 0}
    from fastapi import BackgroundTasks, Depends
    from fastapi.responses import JSONResponse

    rejected_types: tuple[type[BaseException], ...] = ()
    if args.system == "taskflow":
        from taskflow import TaskRejected

        rejected_types = (TaskRejected,)
    elif args.system == "fastapi_taskflow":
        import fastapi_taskflow

        found = getattr(fastapi_taskflow, "QueueFullError", None)
        rejected_types = (found,) if isinstance(found, type) else ()

    def add_all(tasks: Any, n: int, start: int) -> Any:
        for i in range(start, start + n):
            try:
                tasks.add_task(work, i)
            except rejected_types:
                counts["rejected"] += start + n - i  # the rest of this request is not sent
                return JSONResponse({"detail": "rejected"}, status_code=429, headers={"Retry-After": "1"})
            counts["accepted"] += 1
        return {"n": n}

    if sut.manager is not None:

        @sut.app.get("/flood")
        async def flood_managed(
            n: int, start: int, tasks: Annotated[Any, Depends(sut.manager.get_tasks)]
        ) -> Any:
            return add_all(tasks, n, start)
    else:

        @sut.app.get("/flood")
        async def flood_plain(n: int, start: int, background_tasks: BackgroundTasks) -> Any:
            return add_all(background_tasks, n, start)

    @sut.app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        return {
            **counts,
            "ran": sum(1 for c in ran.values() if c),
            "ran_twice": sum(1 for c in ran.values() if c > 1),
            "settled": sut.settled(),
            "statuses": sut.statuses() if args.system in MANAGED else {},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_fds": peaks.fds,
            "gc_max_ms": pauses.summary()["max_ms"],
        }

    serve(sut.app, args.port)


def run_probe(args: argparse.Namespace) -> None:
    """Time `GET /bench/health` every 10 ms until SIGTERM (or `--deadline`); write (t, ms) pairs."""
    import http.client

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    samples: list[tuple[float, float]] = []
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    deadline = time.monotonic() + args.deadline
    while not stop.is_set() and time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/bench/health")
            conn.getresponse().read()
            samples.append((time.time(), (time.perf_counter() - t0) * 1000))
            if len(samples) == 1:
                Path(args.samples + ".ready").touch()  # the driver waits for this before the flood
        except (OSError, http.client.HTTPException):
            samples.append((time.time(), float("inf")))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        stop.wait(0.01)
    Path(args.samples).write_text(json.dumps(samples))


def _get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return json.loads(response.read())


async def _request(reader: Any, writer: Any, path: str) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; its status code. A bare client: httpx costs the
    driver milliseconds of CPU per request, and the flood must come faster than the server takes it."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _flood(
    port: int, clients: int, bursts: int, per_request: int, gap: float, deadline: float
) -> dict[str, int]:
    outcome: Counter[str] = Counter()
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]

    async def send(c: int, burst: int) -> None:
        reader, writer = connections[c]
        start = (burst * clients + c) * per_request
        try:
            status = await _request(reader, writer, f"/flood?n={per_request}&start={start}")
            outcome[str(status)] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            outcome["error"] += 1
            writer.close()
            connections[c] = await asyncio.open_connection("127.0.0.1", port)

    async def everyone() -> None:
        for burst in range(bursts):  # every client sends one request at once, then a pause
            await asyncio.gather(*(send(c, burst) for c in range(clients)))
            await asyncio.sleep(gap)

    try:
        await asyncio.wait_for(everyone(), deadline)
    except TimeoutError:
        outcome["deadline"] += 1
    for _, writer in connections:
        writer.close()
    return dict(outcome)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(args: argparse.Namespace) -> dict[str, Any]:
    clients, bursts, per_request = (20, 2, 5) if args.tiny else (args.clients, args.bursts, args.per_request)
    port = free_port()
    common = ("--system", args.system, "--port", str(port), "--variant", args.variant)
    server = subprocess.Popen(
        script_command("w8_overload.py", "--role", "server", *common, "--task-ms", str(args.task_ms)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-w8-") as tmp:
        samples_path = Path(tmp) / "probe.json"
        probe = None
        try:
            wait_for_port(port, 30, server)
            probe = subprocess.Popen(
                script_command("w8_overload.py", "--role", "probe", *common, "--samples", str(samples_path),
                               "--deadline", str(args.deadline + 90)),
            )  # fmt: skip
            ready = Path(str(samples_path) + ".ready")
            ready_by = time.monotonic() + 30
            while not ready.exists() and time.monotonic() < ready_by:
                time.sleep(0.05)
            time.sleep(0.5 if args.tiny else 2.0)  # idle probe figures first
            flood_start = time.time()
            outcome = asyncio.run(_flood(port, clients, bursts, per_request, args.burst_gap, args.deadline))
            settle_by = time.monotonic() + 60
            stats = _get(port, "/bench/stats")
            while time.monotonic() < settle_by and not (
                stats["settled"] and stats["ran"] >= stats["accepted"]
            ):
                time.sleep(0.1)
                stats = _get(port, "/bench/stats")
            flood_end = time.time()  # the window ends once every accepted task has run
        finally:
            if probe is not None:
                probe.send_signal(signal.SIGTERM)
                probe.wait(timeout=30)
            server.send_signal(signal.SIGTERM)
            try:
                _, stderr = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                _, stderr = server.communicate()
        samples = json.loads(samples_path.read_text()) if samples_path.exists() else []
    during = [ms for t, ms in samples if flood_start <= t <= flood_end]
    idle = [ms for t, ms in samples if t < flood_start]
    tasks = clients * bursts * per_request
    lost = stats["accepted"] - stats["ran"]
    metrics = {
        "probe_p99_ms": _percentile(during, 0.99),
        "probe_p50_ms": _percentile(during, 0.50),
        "probe_max_ms": max(during) if during else None,
        "probe_idle_p99_ms": _percentile(idle, 0.99),
        "probe_calls": len(during),
        "peak_rss_mb": stats["peak_rss_mb"],
        "peak_fds": stats["peak_fds"],
        "accepted": stats["accepted"],
        "rejected": stats["rejected"],
        "ran": stats["ran"],
        "lost": lost,
        "ran_twice": stats["ran_twice"],
        "gc_max_ms": stats["gc_max_ms"],
        "flood_s": flood_end - flood_start,
    }
    ok = (
        lost == 0 and stats["ran_twice"] == 0 and stats["accepted"] + stats["rejected"] == tasks
        and not outcome.get("error") and not outcome.get("deadline") and bool(during)
    )  # fmt: skip
    if args.system == "taskflow":
        ok = ok and stats["statuses"].get("success") == stats["accepted"]
    return {
        "metrics": metrics,
        "checks": {"ok": ok, "http": outcome, "statuses": stats["statuses"], "server_stderr": stderr[-2000:],
                   "probe_median_all_ms": statistics.median(ms for _, ms in samples) if samples else None},
        "counts": {"clients": clients, "bursts": bursts, "tasks_per_request": per_request,
                   "gap_s": args.burst_gap,
                   "tasks": tasks, "task_ms": args.task_ms, "variant": args.variant},
    }  # fmt: skip


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--role", choices=("driver", "server", "probe"), default="driver")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--variant", choices=("defaults", "bounded"), default="defaults")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--bursts", type=int, default=5, help="each burst: one request from every client at once")
    p.add_argument("--burst-gap", type=float, default=0.5, help="seconds between bursts")
    p.add_argument("--per-request", type=int, default=20, help="tasks per request")
    p.add_argument("--task-ms", type=float, default=10.0)
    p.add_argument("--deadline", type=float, default=120.0, help="seconds the flood may take at most")
    p.add_argument("--samples", default="")
    args = p.parse_args()
    if args.role == "server":
        run_server(args)
        sys.exit(0)
    if args.role == "probe":
        run_probe(args)
        sys.exit(0)
    emit(args, drive(args))


if __name__ == "__main__":
    main()
