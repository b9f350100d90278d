"""The thread lane: the worker threads that run the sync children of a supervisor tree with a thread cap.

The outermost supervisor with `Policy.max_threads` owns one lane of at most that many workers; every sync
attempt of its subtree is queued on it. The lane is that supervisor's cap: its attempts take no limiter on
the event loop (inner supervisors' caps stay limiters), so a worker that ends a body takes the next queued
job at once, without waiting for the loop. A worker is an anyio worker thread (one long
`to_thread.run_sync` call, a task of the root's task group), so `anyio.from_thread.run` works inside a body
as it does in any worker thread. Workers start on demand (when a job is queued and none is idle) and live
until the supervisor closes: the distinct threads that run the subtree's bodies over a whole run are never
more than the cap (a pool of short `run_sync` calls hands out whichever idle thread it has).

A worker takes a job, notes that the body starts, runs it in the job's context (a copy of the attempt's,
as `to_thread.run_sync` makes), and notes its outcome. Notes go to one outbox, drained on the loop by one
callback for however many notes arrived meanwhile (a worker schedules the callback only when none is
pending), in the order they were sent. So an attempt counts as running only while a worker runs its body:
`running` never exceeds the cap; and a run of short bodies costs the loop one wake-up, not two per job.

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
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread


class LaneJob:
    """One sync attempt on the lane; `owner` is the attempt loop's (what `on_start` needs)."""

    __slots__ = (
        "abandoned", "claimed", "context", "done", "fn", "notes", "ok", "owner", "started", "value",
        "withdrawn",
    )  # fmt: skip

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], owner: Any) -> None:
        self.fn: Callable[..., Any] | None = fn
        self.value: Any = args  # the arguments until the body has run, then its result or error
        self.owner = owner
        self.context: contextvars.Context | None = contextvars.copy_context()
        self.done = anyio.Event()
        self.notes = 0  # the worker's notes handled on the loop: 1 the body started, 2 it ended
        self.ok = self.claimed = self.withdrawn = self.abandoned = self.started = False


class ThreadLane:
    """At most `cap` anyio worker threads draining one queue of sync attempts.

    `spawn(fn)` starts `fn()` as a task of the root's task group; `on_start(job)` and `on_end(job)` run on
    the loop as a worker starts and ends a job's body (neither for a job whose attempt is gone by then).
    `wanted(job)`, asked in the worker just before it claims a job, says whether its attempt may still run:
    a child cancelled on the loop (its handle final at once) must not start while its task has not yet
    been woken to withdraw the job. Loop-side state (`workers`, `abandoned`, `busy`, `queued`, the job flags
    but `claimed` and `withdrawn`) is only touched on the loop; `claimed`/`withdrawn` decide, under the
    lock, whether a job runs at all. The workers share the outbox, the idle tokens and `_drain_pending`
    with the loop through operations that are atomic in CPython (deque and list appends and pops, one
    attribute store).
    """

    __slots__ = (
        "_call_soon",
        "_drain_pending",
        "_idle",
        "_lock",
        "_on_end",
        "_on_start",
        "_outbox",
        "_queue",
        "_scopes",
        "_spawn",
        "_unlimited",
        "_wanted",
        "abandoned",
        "busy",
        "cap",
        "closed",
        "queued",
        "workers",
    )

    def __init__(
        self,
        cap: int,
        spawn: Callable[[Callable[[], Any]], None],
        on_start: Callable[[LaneJob], None],
        on_end: Callable[[LaneJob], None],
        wanted: Callable[[LaneJob], bool],
    ) -> None:
        self.cap = cap
        self._spawn = spawn
        self._on_start = on_start
        self._on_end = on_end
        self._wanted = wanted
        self._queue: queue.SimpleQueue[LaneJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._outbox: deque[LaneJob] = deque()
        self._drain_pending = False
        # One token per time a worker went idle, taken by the submit that hands it a job (as the idle
        # semaphore of concurrent.futures.ThreadPoolExecutor): no token, no idle worker, start another.
        self._idle: list[None] = []
        self._call_soon: Callable[..., object] | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._unlimited: anyio.CapacityLimiter | None = None
        self.workers = 0
        self.abandoned = 0
        self.busy = 0  # bodies running now (abandoned ones included: they hold their worker)
        self.queued = 0  # jobs submitted whose body has not started, nor been withdrawn
        self.closed = False

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], owner: Any) -> LaneJob:
        """Queue `fn(*args)` (called on the loop, in the attempt's context); a worker is started if none is
        idle and fewer than `cap` run (they then stay: see the module docstring)."""
        if self.closed:
            raise RuntimeError("the thread lane is closed (its supervisor has stopped)")
        job = LaneJob(fn, args, owner)
        self._queue.put(job)
        self.queued += 1
        if self.workers < self.cap:
            try:
                self._idle.pop()
            except IndexError:
                if self._call_soon is None:
                    self._open()
                self.workers += 1
                self._spawn(self._worker)
        return job

    def withdraw(self, job: LaneJob) -> None:
        """The job's attempt is gone (cancelled or timed out): it never runs, or its body is abandoned.
        Not for a job whose end was handled (`notes == 2`): that one is over."""
        with self._lock:
            if not job.claimed:
                job.withdrawn = True
                self.queued -= 1
                return
        job.abandoned = True
        self.abandoned += 1  # until the worker's note that the body ended is handled (`_drain`)

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
        get, lock, idle = self._queue.get, self._lock, self._idle
        note, wanted = self._note, self._wanted
        while True:
            job = get()
            if job is None:
                return
            with lock:
                if job.withdrawn or not wanted(job):
                    idle.append(None)
                    continue  # the attempt withdraws it (if it has not yet) as its cancellation arrives
                job.claimed = True
            note(job)
            fn, args, context = job.fn, job.value, job.context
            job.fn = job.context = None
            assert fn is not None and context is not None
            try:
                job.value = context.run(fn, *args)
                job.ok = True
            except BaseException as error:  # handed to the attempt, as to_thread.run_sync raises it
                job.value = error
            del fn, args, context
            idle.append(None)  # before the note: the loop may hand this worker the next job at once
            note(job)
            del job

    def _note(self, job: LaneJob) -> None:
        """(In a worker) queue a note for the loop; schedule the drain unless one is pending."""
        self._outbox.append(job)
        if not self._drain_pending:
            self._drain_pending = True
            call_soon = self._call_soon
            assert call_soon is not None
            call_soon(self._drain)

    def _drain(self) -> None:
        """(On the loop) handle every note sent so far, in order: a job's first note is its body's start,
        its second the body's end."""
        self._drain_pending = False  # before reading: a note sent from now on schedules another drain
        outbox = self._outbox
        while outbox:
            job = outbox.popleft()
            job.notes += 1
            if job.notes == 1:
                self.queued -= 1
                self.busy += 1
                if not job.abandoned:
                    job.started = True
                    self._on_start(job)
            else:
                self.busy -= 1
                if job.abandoned:
                    self.abandoned -= 1
                    job.value = None
                else:
                    self._on_end(job)
                    job.done.set()
