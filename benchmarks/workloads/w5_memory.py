"""Workload 5, memory: peak RSS after 100,000 completed tasks, bytes per retained record, GC pauses.

Variants (one per process, so each starts from a clean heap):

- `retain`: every terminal record is kept (taskflow `max_terminal_records=None`; fastapi-taskflow never
  evicts). Reports peak RSS, RSS growth per task, and the garbage collector's pauses (`gc.callbacks`)
  while the records pile up: the collector walks every retained record on each full collection.
- `capped`: taskflow's default cap (10,000 records). RSS is sampled every 10% of the run; past twice
  the cap it must stay flat (systems without a cap show their growth here).
- `traced`: tracemalloc over a smaller run: exact Python bytes per retained record.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

import anyio
from _harness import GcPauses, add, client_for, emit, parser, peak_rss_bytes, rss_bytes, wait_until
from _sut import MANAGED, Progress, build

CAP = 10_000
progress = Progress()


async def noop(i: int) -> None:
    progress.done += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    total = args.tasks
    if args.tiny:
        total = 2_000
    elif args.variant == "traced":
        total = min(total, 20_000)  # tracemalloc slows every allocation; 20k records are plenty
    per_request = 100
    requests = total // per_request
    cap: int | None = CAP if args.variant == "capped" else None
    if args.tiny and cap is not None:
        cap = 200
    sut = build(args.system, {"noop": noop}, manager_kwargs={"max_terminal_records": cap})
    samples: list[tuple[int, int]] = []
    pauses = GcPauses()
    async with client_for(sut) as client:
        await add(client, "noop", per_request, -per_request)  # warm up; not measured
        await wait_until(lambda: progress.done >= per_request and sut.settled(), 30)
        warm_done = progress.done
        gc.collect()
        if args.variant == "traced":
            tracemalloc.start()
        before_traced = tracemalloc.get_traced_memory()[0] if args.variant == "traced" else 0
        before = rss_bytes()
        records_before = sut.retained_records() or 0
        t0 = time.perf_counter()
        step = max(1, requests // 10)
        with pauses:
            for r in range(requests):
                await add(client, "noop", per_request, r * per_request)
                if (r + 1) % step == 0:
                    sent = (r + 1) * per_request
                    await wait_until(lambda sent=sent: progress.done - warm_done >= sent, 60)
                    samples.append((sent, rss_bytes()))
            done = await wait_until(lambda: progress.done - warm_done >= requests * per_request, 60)
            done = done and await wait_until(sut.settled, 30, poll=0.001)
        elapsed = time.perf_counter() - t0
        gc.collect()
        after = rss_bytes()
        after_traced = tracemalloc.get_traced_memory()[0] if args.variant == "traced" else 0
        tracemalloc.stop()
        retained = (sut.retained_records() or 0) - records_before
        statuses = sut.statuses()
    tasks = requests * per_request
    metrics: dict[str, Any] = {
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "rss_growth_mb": (after - before) / 2**20,
        "rss_bytes_per_task": (after - before) / tasks,
        "retained_records": retained,
        "elapsed_s": elapsed,
    }
    if args.variant == "traced":
        metrics["traced_bytes_per_task"] = (after_traced - before_traced) / tasks
        if retained > 0:
            metrics["traced_bytes_per_record"] = (after_traced - before_traced) / retained
    if args.variant == "retain":
        metrics.update({f"gc_{k}": v for k, v in pauses.summary().items()})
    if args.variant == "capped":
        # Growth after twice the cap, per task: ~0 when memory is flat (allocator noise aside).
        past = [(n, rss) for n, rss in samples if n >= 2 * (cap or CAP)]
        if len(past) >= 2:
            metrics["bytes_per_task_past_cap"] = (past[-1][1] - past[0][1]) / (past[-1][0] - past[0][0])
        metrics["rss_samples_mb"] = [[n, round(rss / 2**20, 2)] for n, rss in samples]
    ok = done and progress.done - warm_done == tasks
    if args.system in MANAGED:
        ok = ok and statuses.get("success") == tasks + per_request
    return {
        "metrics": metrics,
        "checks": {"ok": ok, "statuses": statuses},
        "counts": {"tasks": tasks, "cap": cap},
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--variant", choices=("retain", "capped", "traced"), default="retain")
    p.add_argument("--tasks", type=int, default=100_000)
    args = p.parse_args()
    emit(args, anyio.run(run, args))


if __name__ == "__main__":
    main()
