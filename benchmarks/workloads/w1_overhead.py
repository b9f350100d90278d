"""Workload 1, in-process overhead: R requests x N no-op tasks through httpx's ASGI transport.

The app's lifespan runs (asgi_lifespan), so managed tasks go to their supervisors as in production.
The clock runs from the first request until every task body has run; the result is microseconds per
task. Async or sync bodies, either injection style, on asyncio or trio; for taskflow, with structlog
and/or an OpenTelemetry tracer provider set up first (`--observability`, see `_observability`).
"""

from __future__ import annotations

import argparse
import gc
import time

import anyio
from _harness import add, client_for, emit, parser, wait_until
from _observability import MODES, as_expected, report, setup
from _sut import MANAGED, Progress, build

progress = Progress()


async def noop(i: int) -> None:
    progress.done += 1  # one thread (the event loop): no lock needed


def noop_sync(i: int) -> None:
    progress.finish()


noop_sync.is_sync = True  # type: ignore[attr-defined]


async def run(args: argparse.Namespace) -> dict[str, object]:
    requests, per_request = args.requests, args.tasks
    if args.tiny:
        requests, per_request = 4, 10
    func = "noop" if args.body == "async" else "noop_sync"
    sut = build(args.system, {"noop": noop, "noop_sync": noop_sync}, injection=args.injection)
    expected = 0 if args.system == "b0" else requests * per_request
    warm = min(10, requests)
    async with client_for(sut) as client:
        for r in range(warm):  # warm up imports, caches and the thread pool; not timed
            await add(client, func, per_request, -1 - r * per_request)
        warm_expected = 0 if args.system == "b0" else warm * per_request
        await wait_until(lambda: progress.done >= warm_expected, 30)
        base = progress.done
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for r in range(requests):
            await add(client, func, per_request, r * per_request)
        completed = await wait_until(lambda: progress.done - base >= expected, 60)
        completed = completed and await wait_until(sut.settled, 30, poll=0.001)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        statuses = sut.statuses()
    tasks = requests * per_request
    ok = completed and progress.done - base == expected
    if args.system in MANAGED:
        ok = ok and statuses.get("success") == expected + warm_expected and not statuses.get("failed")
    observability = report(args.observability)
    ok = ok and as_expected(args.observability, observability)
    return {
        "metrics": {
            "us_per_task": elapsed / tasks * 1e6,
            "cpu_us_per_task": cpu / tasks * 1e6,
            "elapsed_s": elapsed,
        },
        "checks": {
            "ok": ok,
            "expected": expected,
            "completed": progress.done - base,
            "statuses": statuses,
            "observability": observability,
        },
        "counts": {"requests": requests, "tasks_per_request": per_request},
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--body", choices=("async", "sync"), default="async")
    p.add_argument("--injection", choices=("depends", "annotation"), default="depends")
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--tasks", type=int, default=100)
    p.add_argument(
        "--observability",
        choices=MODES,
        default="none",
        help="taskflow only: set up structlog, an OpenTelemetry tracer provider, both, or neither first",
    )
    args = p.parse_args()
    if args.observability != "none" and args.system != "taskflow":
        p.error("--observability applies to --system taskflow only")
    setup(args.observability)
    result = anyio.run(run, args, backend=args.backend)
    emit(args, result)


if __name__ == "__main__":
    main()
