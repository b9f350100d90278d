"""The thread lane: the worker threads that run the sync children of a supervisor tree with a thread cap.

The outermost supervisor with `Policy.max_threads` owns one lane of at most that many workers; every sync
attempt of its subtree is queued on it. A worker is an anyio worker thread (one long `to_thread.run_sync`
call, a task of the root's task group), so `anyio.from_thread.run` works inside a body as it does in any
worker thread. Workers start on demand and live until the supervisor closes: the distinct threads that run
the subtree's bodies over a whole run are never more than the cap (a pool of short `run_sync` calls hands
out whichever idle thread it has).

A worker takes a job, tells the loop the body starts (a callback queued on the loop, no round trip), runs
the body in the job's context (a copy of the attempt's, as `to_thread.run_sync` makes), and queues the
outcome on the loop. Both callbacks come in the order the worker sent them, so an attempt counts as running
only while a worker runs its body: `running` never exceeds the cap.

An attempt cancelled (or timed out) before a worker took its job withdraws it: the body never runs. One
cancelled while its body runs is abandoned, as `to_thread.run_sync(abandon_on_cancel=True)` does: the worker
finishes the body, drops its outcome and only then takes the next job. Meanwhile the lane has one worker
less; `abandoned` (in the supervisor's `statistics().lane`) counts such workers, so a body stuck past its
timeout shows instead of silently shrinking the lane.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import queue
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread


class LaneJob:
    """One sync attempt on the lane; `owner` is the attempt loop's (what `on_start` needs)."""

    __slots__ = (
        "abandoned", "claimed", "context", "done", "fn", "ok", "owner", "started", "value", "withdrawn",
    )  # fmt: skip

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], owner: Any) -> None:
        self.fn: Callable[..., Any] | None = fn
        self.value: Any = args  # the arguments until the body has run, then its result or error
        self.owner = owner
        self.context: contextvars.Context | None = contextvars.copy_context()
        self.done = anyio.Event()
        self.ok = self.claimed = self.withdrawn = self.abandoned = self.started = False


class ThreadLane:
    """At most `cap` anyio worker threads draining one queue of sync attempts.

    `spawn(fn)` starts `fn()` as a task of the root's task group; `on_start(job)` runs on the loop as a
    worker starts a job's body. Loop-side state (`workers`, `abandoned`, the job flags but `claimed` and
    `withdrawn`) is only touched on the loop; `claimed`/`withdrawn` decide, under the lock, whether a job
    runs at all.
    """

    __slots__ = (
        "_call_soon",
        "_lock",
        "_on_start",
        "_queue",
        "_scopes",
        "_spawn",
        "_unlimited",
        "abandoned",
        "cap",
        "closed",
        "workers",
    )

    def __init__(
        self, cap: int, spawn: Callable[[Callable[[], Any]], None], on_start: Callable[[LaneJob], None]
    ) -> None:
        self.cap = cap
        self._spawn = spawn
        self._on_start = on_start
        self._queue: queue.SimpleQueue[LaneJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._call_soon: Callable[..., object] | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._unlimited: anyio.CapacityLimiter | None = None
        self.workers = 0
        self.abandoned = 0
        self.closed = False

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], owner: Any) -> LaneJob:
        """Queue `fn(*args)` (called on the loop, in the attempt's context); a worker is started if fewer
        than `cap` run (they then stay: see the module docstring)."""
        if self.closed:
            raise RuntimeError("the thread lane is closed (its supervisor has stopped)")
        job = LaneJob(fn, args, owner)
        self._queue.put(job)
        if self.workers < self.cap:
            if self._call_soon is None:
                self._open()
            self.workers += 1
            self._spawn(self._worker)
        return job

    def withdraw(self, job: LaneJob) -> None:
        """The job's attempt is gone (cancelled or timed out): it never runs, or its body is abandoned."""
        with self._lock:
            if not job.claimed:
                job.withdrawn = True
                return
        job.abandoned = True
        self.abandoned += 1  # until the worker reports the body's end (`_finished`)

    def close(self) -> None:
        """Let every worker return once its body (if any) ends; their tasks return at once."""
        if self.closed:
            return
        self.closed = True
        for _ in range(self.workers):
            self._queue.put(None)
        for scope in self._scopes:
            scope.cancel()  # a worker stuck in an abandoned body must not hold the task group

    def _open(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Imported here: trio is optional, and present whenever it is running.
            from ._trio_tasks import threadsafe_caller

            self._call_soon = threadsafe_caller()
        else:
            self._call_soon = loop.call_soon_threadsafe
        # The lane is the cap: anyio's default thread limiter must not count its workers.
        self._unlimited = anyio.CapacityLimiter(math.inf)

    async def _worker(self) -> None:
        scope = anyio.CancelScope()
        self._scopes.append(scope)
        with scope:
            await anyio.to_thread.run_sync(self._work, limiter=self._unlimited, abandon_on_cancel=True)

    def _work(self) -> None:
        """A worker thread: run jobs until the lane closes."""
        get, lock, call_soon = self._queue.get, self._lock, self._call_soon
        assert call_soon is not None
        started, finished = self._started, self._finished
        while True:
            job = get()
            if job is None:
                return
            with lock:
                if job.withdrawn:
                    continue
                job.claimed = True
            call_soon(started, job)
            fn, args, context = job.fn, job.value, job.context
            job.fn = job.context = None
            assert fn is not None and context is not None
            try:
                job.value = context.run(fn, *args)
                job.ok = True
            except BaseException as error:  # handed to the attempt, as to_thread.run_sync raises it
                job.value = error
            del fn, args, context
            call_soon(finished, job)

    def _started(self, job: LaneJob) -> None:
        if not job.abandoned:
            job.started = True
            self._on_start(job)

    def _finished(self, job: LaneJob) -> None:
        if job.abandoned:
            self.abandoned -= 1
            job.value = None
        else:
            job.done.set()
