"""Instructions per task, counted by valgrind's callgrind: figures a shared, noisy machine cannot move.

    python benchmarks/instructions.py                          # workload 1 (async, asyncio): b2, taskflow
    python benchmarks/instructions.py -s b0,b1,b2,taskflow --body sync --backend trio
    python benchmarks/instructions.py --tree ../other-checkout # the same, for another checkout of taskflow
    python benchmarks/instructions.py --spawn                  # the floor: a native spawn, with and without
                                                                 an anyio cancel scope in the task

Wall-clock and even CPU time move by tens of percent on a machine whose cores other jobs share; the number
of instructions a process executes does not (the same run gives the same count to within a few thousand
in billions, whatever else runs). Each case runs twice under `valgrind --tool=callgrind` with the same
settings but a different number of requests; the difference in instructions, divided by the difference in
tasks, is the cost of one task with its share of the request, imports and start-up cancelled out.
Instructions are not time (a cache miss costs more than an add), so these figures complement the timed
workloads rather than replace them; they are the right tool for A/B comparisons of a code change.

Needs `valgrind` (Debian package). Slow: each run takes 1-3 minutes (valgrind executes about 50 times
slower than the CPU); `--jobs` runs that many at once.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_COLLECTED = re.compile(r"Collected : (\d+)")

_SPAWN = """
import asyncio, sys
import anyio

async def bare():
    pass

async def scoped():
    with anyio.CancelScope():
        pass

async def main(n, body):
    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.create_task(body()) for _ in range(n)])

anyio.run(main, int(sys.argv[1]), scoped if sys.argv[2] == "scoped" else bare)
"""


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions `argv` executes under callgrind (its output is discarded)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=1800,
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{' '.join(argv)} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_task(
    case: str, small: list[str], large: list[str], extra_tasks: int, env: dict[str, str], jobs: int
) -> tuple[str, float]:
    with ThreadPoolExecutor(max_workers=min(jobs, 2)) as pool:
        low, high = pool.map(lambda argv: instructions(argv, env), (small, large))
    return case, (high - low) / extra_tasks


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--systems", default="b2,taskflow", help="workload 1 systems (comma-separated)")
    p.add_argument("--body", choices=("async", "sync"), default="async")
    p.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    p.add_argument("--tasks", type=int, default=100, help="tasks per request")
    p.add_argument("--requests", default="20,60", help="the two request counts (default 20,60)")
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose taskflow is measured")
    p.add_argument("--spawn", action="store_true", help="measure the native spawn floor instead")
    p.add_argument("--jobs", type=int, default=2, help="valgrind runs at once (default 2)")
    args = p.parse_args(argv)
    small, large = (int(x) for x in args.requests.split(","))
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(args.tree.resolve())}
    python = sys.executable
    cases: list[tuple[str, list[str], list[str], int]] = []
    if args.spawn:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(_SPAWN)
        for kind in ("bare", "scoped"):
            cases.append(
                (f"asyncio create_task ({kind})", [python, script.name, "1000", kind],
                 [python, script.name, "11000", kind], 10_000)
            )  # fmt: skip
    else:
        w1 = str(HERE / "workloads" / "w1_overhead.py")
        shape = ["--body", args.body, "--backend", args.backend, "--tasks", str(args.tasks)]
        for system in args.systems.split(","):
            cases.append(
                (f"{system} ({args.body}, {args.backend})",
                 [python, w1, "--system", system, *shape, "--requests", str(small)],
                 [python, w1, "--system", system, *shape, "--requests", str(large)],
                 (large - small) * args.tasks)
            )  # fmt: skip
    print(f"instructions per task (callgrind; {args.tree.resolve()})")
    for case, small_argv, large_argv, extra in cases:
        name, figure = per_task(case, small_argv, large_argv, extra, env, args.jobs)
        print(f"  {name:<32} {figure:>10,.0f}", flush=True)


if __name__ == "__main__":
    main()
