"""Workload 4, sync tasks on a thread cap: 2,000 tasks of a 2 ms sleep with `max_sync_threads=8`.

Sent as 20 requests of 100 through httpx's ASGI transport, either one request at a time (`sequential`)
or all 20 at once (`concurrent`). The clock runs until every task has run and settled; the ideal is
tasks x 2 ms / 8 threads = 0.5 s. Starlette runs one request's background tasks one after another, so
plain BackgroundTasks (b1) takes about tasks x 2 ms when sent one request at a time.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import anyio
from _harness import add, client_for, emit, parser, wait_until
from _sut import MANAGED, Progress, build

SLEEP = 0.002
THREADS = 8
progress = Progress()
threads_seen: set[int] = set()


def sleepy(i: int) -> None:
    threads_seen.add(threading.get_ident())
    time.sleep(SLEEP)
    progress.finish()


sleepy.is_sync = True  # type: ignore[attr-defined]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests, per_request = (4, 10) if args.tiny else (args.requests, args.tasks)
    tasks = requests * per_request
    sut = build(args.system, {"sleepy": sleepy}, manager_kwargs={"max_sync_threads": THREADS})
    async with client_for(sut) as client:
        await add(client, "sleepy", THREADS, -THREADS)  # start the worker threads; not timed
        await wait_until(lambda: progress.done >= THREADS and sut.settled(), 30)
        base = progress.done
        t0, c0 = time.perf_counter(), time.process_time()
        if args.mode == "sequential":
            for r in range(requests):
                await add(client, "sleepy", per_request, r * per_request)
        else:
            async with anyio.create_task_group() as tg:
                for r in range(requests):
                    tg.start_soon(add, client, "sleepy", per_request, r * per_request)
        done = await wait_until(lambda: progress.done - base >= tasks, 120)
        done = done and await wait_until(sut.settled, 30, poll=0.001)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        statuses = sut.statuses()
    ideal = tasks * SLEEP / THREADS
    ok = done and progress.done - base == tasks
    if args.system in MANAGED:
        ok = ok and statuses.get("success") == tasks + THREADS
    return {
        # CPU time of the whole process (event loop and worker threads) per task: what a shared machine
        # moves least, for A/B comparisons.
        "metrics": {
            "wall_s": elapsed,
            "ideal_s": ideal,
            "x_ideal": elapsed / ideal,
            "cpu_us_per_task": cpu / tasks * 1e6,
        },
        "checks": {"ok": ok, "completed": progress.done - base, "statuses": statuses},
        "counts": {
            "requests": requests,
            "tasks_per_request": per_request,
            "threads": THREADS,
            "distinct_threads": len(threads_seen),
        },
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("sequential", "concurrent"), default="sequential")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--tasks", type=int, default=100)
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = p.parse_args()
    emit(args, anyio.run(run, args, backend=args.backend))


if __name__ == "__main__":
    main()
