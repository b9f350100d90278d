"""The thread lane: the worker threads that run the sync children of a supervisor tree.

The outermost supervisor with `Policy.max_threads` owns one *bounded* lane of at most that many workers;
every sync attempt of its subtree is queued on it. The lane is that supervisor's cap: its attempts take no
limiter on the event loop (inner supervisors' caps stay limiters), so a worker that ends a body takes the
next queued job at once, without waiting for the loop. A root without a thread cap owns an *unbounded*
lane for the sync children no cap applies to: its own workers, as many as anyio's default thread limiter
has tokens when the lane starts (40 unless the app changed it), not counted in that limiter, and a worker
held by an abandoned body is replaced (no cap on distinct threads was asked for).

A worker is an anyio worker thread (one long `to_thread.run_sync` call, a task of the root's task group),
so `anyio.from_thread.run` works inside a body as it does in any worker thread. Workers start on demand
(when a job is queued and none is idle) and live until the supervisor closes: the distinct threads that
run a bounded lane's bodies over a whole run are never more than its cap (a pool of short `run_sync` calls
hands out whichever idle thread it has).

A worker takes a job, notes that the body starts, runs it in the job's context (a copy of the attempt's,
as `to_thread.run_sync` makes), and notes its outcome. Notes go to one outbox, drained on the loop by one
callback for however many notes arrived meanwhile (a worker schedules the callback only when none is
pending), in the order they were sent. So an attempt counts as running only while a worker runs its body:
`running` never exceeds the cap; and a run of short bodies costs the loop one wake-up, not two per job.

An attempt cancelled (or timed out) before a worker took its job withdraws it: the body never runs (a
worker also asks `wanted(job)` before it claims one, so a child cancelled through its handle never starts
even if a worker frees up before the child's task has been woken). One cancelled while its body runs is
abandoned, as `to_thread.run_sync(abandon_on_cancel=True)` does: the worker finishes the body, drops its
outcome and only then takes the next job. Meanwhile a bounded lane has one worker less (an unbounded one
starts another if it needs one); `abandoned` (in the supervisor's `statistics().lane`) counts such
workers, so a body stuck past its timeout shows instead of silently shrinking the lane.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread


class LaneJob:
    """One sync attempt on the lane; `owner` is the attempt loop's (what `on_start` needs)."""

    __slots__ = (
        "abandoned", "claimed", "context", "fn", "notes", "ok", "owner", "started", "value", "waiter",
        "withdrawn",
    )  # fmt: skip

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], owner: Any, waiter: Any) -> None:
        self.fn: Callable[..., Any] | None = fn
        self.value: Any = args  # the arguments until the body has run, then its result or error
        self.owner = owner
        self.context: contextvars.Context | None = contextvars.copy_context()
        # What the attempt waits on: an asyncio future, or on trio the waiting task (see `ThreadLane.wait`).
        self.waiter = waiter
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
        "_loop",
        "_on_end",
        "_on_start",
        "_outbox",
        "_queue",
        "_scopes",
        "_spawn",
        "_unlimited",
        "_wanted",
        "abandoned",
        "bounded",
        "busy",
        "cap",
        "closed",
        "queued",
        "workers",
    )

    def __init__(
        self,
        cap: float | None,
        spawn: Callable[[Callable[[], Any]], None],
        on_start: Callable[[LaneJob], None],
        on_end: Callable[[LaneJob], None],
        wanted: Callable[[LaneJob], bool],
    ) -> None:
        self.bounded = cap is not None
        self.cap = cap  # None until an unbounded lane starts (see the module docstring)
        self._spawn: Callable[[Callable[[], Any]], None] | None = spawn
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
        self._loop: asyncio.AbstractEventLoop | None = None  # None on trio
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
        if self._call_soon is None:
            self._open()
        loop = self._loop
        job = LaneJob(fn, args, owner, None if loop is None else loop.create_future())
        self._queue.put(job)
        self.queued += 1
        # An unbounded lane replaces the workers held by abandoned bodies; a bounded one never does.
        if (self.workers if self.bounded else self.workers - self.abandoned) < self.cap:  # type: ignore[operator]
            try:
                self._idle.pop()
            except IndexError:
                self.workers += 1
                assert self._spawn is not None  # not closed
                self._spawn(self._worker)
        return job

    def wait(self, job: LaneJob) -> Awaitable[None]:
        """What the attempt awaits until the body of `job` has ended (called at once after `submit`)."""
        if self._loop is not None:
            return job.waiter  # type: ignore[no-any-return]  # the job's asyncio future
        from ._trio_tasks import wait_rescheduled

        return wait_rescheduled(job)

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
        # An idle anyio worker thread keeps its last call (our `_work`) until it exits: let that hold no
        # more than the lane itself, not the supervisor tree (and what its observers refer to).
        self._scopes = []
        self._spawn = None

    def _open(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Imported here: trio is optional, and present whenever it is running.
            from ._trio_tasks import threadsafe_caller

            self._call_soon = threadsafe_caller()
        else:
            self._loop = loop
            self._call_soon = loop.call_soon_threadsafe
        if self.cap is None:
            self.cap = anyio.to_thread.current_default_thread_limiter().total_tokens
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
                # Without this frame: it outlives the job, and its locals would make a cycle of the error.
                tb = error.__traceback__
                job.value = error.with_traceback(tb.tb_next if tb is not None else None)
                del tb
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
        # Only the notes there now: one sent meanwhile has scheduled another drain, and the loop runs what
        # is due in between (a steady stream of notes must not hold it).
        for _ in range(len(outbox)):
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
                    self._release(job)

    def _release(self, job: LaneJob) -> None:
        """Wake the attempt waiting for `job` (unless it has stopped waiting: cancelled)."""
        waiter = job.waiter
        if waiter is None:
            return
        job.waiter = None
        if self._loop is not None:
            if not waiter.done():
                waiter.set_result(None)
        else:
            from ._trio_tasks import reschedule

            reschedule(waiter)
