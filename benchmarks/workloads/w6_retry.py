"""Workload 6, retry storm: 5,000 always-failing tasks with `retries=3, delay=0`.

Reports microseconds per attempt (wall time until every task has failed / attempts), and checks that
each task ran exactly 4 times and ended FAILED. The baselines b1 and b2 get the cheapest possible retry:
a hand-written loop of 4 attempts around the same body, with no records.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import anyio
from _harness import add, client_for, emit, parser, wait_until
from _sut import MANAGED, build

RETRIES = 3
attempts: dict[int, int] = {}
finished = [0]  # tasks whose attempts are over (every system reaches it through a different path)


class Boom(RuntimeError):
    """The failure every attempt raises."""


async def failing(i: int) -> None:
    attempts[i] = attempts.get(i, 0) + 1
    raise Boom(f"attempt {attempts[i]} of task {i}")


def hand_retried(func: Callable[[int], Any]) -> Callable[[int], Any]:
    """The baselines' retry: a bare loop, then count the task as finished."""

    async def retried(i: int) -> None:
        for _ in range(RETRIES + 1):
            try:
                await func(i)
            except Boom:
                continue
        finished[0] += 1

    return retried


async def run(args: argparse.Namespace) -> dict[str, Any]:
    requests, per_request = (5, 10) if args.tiny else (args.requests, args.tasks)
    tasks = requests * per_request
    managed = args.system in MANAGED
    func = failing if managed else hand_retried(failing)
    sut = build(args.system, {"failing": func}, task_kwargs={"retries": RETRIES, "delay": 0.0})
    # Managed systems count a task finished when their own record says so; the baselines count themselves.
    if managed:

        def over() -> bool:
            return sut.statuses().get("failed", 0) >= tasks

    else:

        def over() -> bool:
            return finished[0] >= tasks

    async with client_for(sut) as client:
        t0, c0 = time.perf_counter(), time.process_time()
        for r in range(requests):
            await add(client, "failing", per_request, r * per_request)
        done = await wait_until(lambda: sum(attempts.values()) >= tasks * (RETRIES + 1), 120)
        done = done and await wait_until(over, 60, poll=0.002)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        statuses = sut.statuses()
        exact = _attempts_recorded(sut) if managed else None
    runs = sorted(set(attempts.values()))
    ok = done and len(attempts) == tasks and runs == [RETRIES + 1]
    if managed:
        ok = ok and statuses.get("failed") == tasks and not statuses.get("success") and exact == tasks
    return {
        "metrics": {
            "us_per_attempt": elapsed / (tasks * (RETRIES + 1)) * 1e6,
            "cpu_us_per_attempt": cpu / (tasks * (RETRIES + 1)) * 1e6,
            "elapsed_s": elapsed,
        },
        "checks": {
            "ok": ok,
            "attempt_counts_seen": runs,
            "statuses": statuses,
            "records_with_4_attempts": exact,
        },
        "counts": {"tasks": tasks, "retries": RETRIES},
    }


def _attempts_recorded(sut: Any) -> int:
    """How many FAILED records say they used exactly RETRIES retries (both libraries keep `retries_used`)."""
    records = sut.manager.table.records() if sut.system == "taskflow" else sut.manager.store.list()
    return sum(
        1
        for r in records
        if str(getattr(r.status, "value", r.status)) == "failed" and r.retries_used == RETRIES
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--tasks", type=int, default=100)
    args = p.parse_args()
    emit(args, anyio.run(run, args))


if __name__ == "__main__":
    main()
