"""CPU-bound tasks in worker processes: `@task_manager.task(executor="process")`.

Run it:   uvicorn examples.cpu_tasks:app
          (or, on trio: hypercorn --worker-class trio examples.cpu_tasks:app)
Then:     curl -X POST "http://localhost:8000/primes?below=2000000"    # runs in a worker process
          curl http://localhost:8000/tasks/<task_id>                    # its progress lines, then its end
          curl -X POST "http://localhost:8000/tasks/<task_id>/cancel"   # kills the worker running it

- `count_primes` runs in a pool of at most 2 worker processes (`max_process_workers`), so it never blocks
  the event loop nor holds the GIL the server needs; each worker is replaced after 50 tasks.
- Its `task_log` lines reach the record (and the dashboard) while it runs; `timeout` ends the worker
  running an attempt that takes too long, and the attempt is retried once in a fresh one.
- A task function of the process executor lives at module level (a worker imports it by name) and takes
  arguments that pickle; `add_task` raises `TaskArgumentError` for one that does not.
"""

from __future__ import annotations

import math
import os

from fastapi import Depends, FastAPI

from taskflow import ManagedBackgroundTasks, TaskAdmin, TaskManager, get_task_context, task_log

task_manager = TaskManager(max_process_workers=2, process_max_tasks_per_worker=50, shutdown_grace=5.0)


@task_manager.task(executor="process", timeout=120, retries=1)
def count_primes(below: int, report_every: int = 250_000) -> int:
    """Count the primes below `below` by trial division (deliberately CPU-bound), reporting progress."""
    context = get_task_context()
    attempt = context.attempt if context is not None else 0
    task_log(f"counting primes below {below} in process {os.getpid()} (attempt {attempt})")
    found = 0
    for n in range(2, below):
        if all(n % d for d in range(2, math.isqrt(n) + 1)):
            found += 1
        if n % report_every == 0:
            task_log(f"{n} checked, {found} primes so far", checked=n)
    task_log(f"{found} primes below {below}")
    return found


app = FastAPI(title="taskflow: CPU-bound tasks")
TaskAdmin(app, task_manager)  # the /tasks API and dashboard, and the runtime for the app's lifespan


@app.post("/primes")
async def primes(
    below: int, tasks: ManagedBackgroundTasks = Depends(task_manager.get_tasks)  # noqa: B008
) -> dict[str, str]:
    return {"task_id": tasks.add_task(count_primes, below, tags={"kind": "cpu"})}


if __name__ == "__main__":  # a worker process imports the main module again: start the server only here
    import uvicorn

    uvicorn.run(app)
