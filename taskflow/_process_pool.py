"""The worker processes of `executor="process"` tasks: at most `max_workers` of them, started on demand.

One `ProcessPool` per task manager owns them. An attempt borrows a worker (an idle one, else a new one while
fewer than `max_workers` are alive, else it waits for one), sends it the call, and a thread of its own reads
what the worker sends back until the attempt's end: `task_log()` lines and checkpoints are handed to the
event loop as they arrive, the result or error ends the attempt. A worker that has run
`max_tasks_per_worker` attempts leaves, and the next attempt starts a fresh one.

An attempt cancelled or timed out while its worker runs the body kills that worker (SIGKILL) and waits for
it to be gone before it ends: no body outlives its attempt, and shutdown is bounded by the supervisor's
grace. `close()` (the end of the lifespan, and the interpreter's exit) stops the idle workers.

Why not `anyio.to_process.run_sync`: one request and one reply per call (no lines while the body runs), its
workers are per event loop and never recycled (only pruned after 5 idle minutes), their ids are hidden,
and their stdout and stderr go to /dev/null. Why not `multiprocessing.Process`: its 'spawn' start method
starts a resource tracker process that lives as long as the parent. So the pool starts each worker itself
(`subprocess.Popen` of a fresh interpreter: spawn semantics, with multiprocessing's own preparation of the
child, see `_process_worker`) and talks to it over a `multiprocessing.connection` pipe, read in a thread, so
a worker is tied to no event loop: the pool serves the lifespan's loop and inline runs alike, on asyncio
and on trio.
"""

from __future__ import annotations

import atexit
import collections
import functools
import math
import multiprocessing.connection
import multiprocessing.spawn
import os
import pickle
import subprocess
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._eventloop import threadsafe_caller
from ._exceptions import ProcessTaskError
from ._process_call import read_outcome

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_EXIT_WAIT = 5.0  # seconds a worker gets to exit once told to, before it is killed
_TASKFLOW_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Puts this copy of taskflow first on the worker's path (before multiprocessing's preparation, which
# restores the parent's whole sys.path), then runs the worker loop.
_BOOTSTRAP = (
    f"import sys; sys.path.insert(0, {_TASKFLOW_ROOT!r}); from taskflow._process_worker import main; main()"
)
_threads: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("taskflow_process_threads")
_pools: weakref.WeakSet[ProcessPool] = weakref.WeakSet()  # pools with workers, stopped at exit
_exit_hook: list[bool] = []  # whether `_stop_all_pools` is registered with atexit


@dataclass(frozen=True)
class ProcessPoolStatistics:
    """A snapshot of a task manager's process pool (`TaskManager.process_statistics()`)."""

    max_workers: int
    max_tasks_per_worker: int | None
    alive: int  # worker processes running now (idle or busy)
    idle: int
    waiting: int  # attempts waiting for a worker
    started: int  # workers started since the pool was made
    recycled: int  # workers that left after max_tasks_per_worker attempts
    killed: int  # workers killed because their attempt was cancelled or timed out
    crashed: int  # workers that died on their own while running an attempt


class ProcessWorker:
    """One worker process and the parent's end of its connection."""

    __slots__ = ("conn", "pid", "popen", "runs")

    def __init__(self, popen: subprocess.Popen[bytes], conn: multiprocessing.connection.Connection) -> None:
        self.popen = popen
        self.conn = conn
        self.pid = popen.pid
        self.runs = 0

    def stop(self, *, kill: bool) -> int | None:
        """End the process (closing its connection lets it leave; `kill` does not wait) and reap it."""
        if kill:
            self.popen.kill()
        self.conn.close()
        try:
            return self.popen.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


@dataclass
class ProcessCall:
    """One attempt for a worker: the function (by reference), its arguments, what the body's
    `get_task_context()` returns (task id, name, attempt, tags, last checkpoint), and where the lines and
    checkpoints it sends go (called on the attempt's event loop)."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    info: tuple[str, str, int, dict[str, str], Any]
    on_message: Callable[[tuple[Any, ...]], None]


class _Job:
    """An attempt as its loop and its reading thread share it; `lock` decides whether the call was sent."""

    __slots__ = ("active", "call", "call_soon", "cancelled", "lock", "retire", "sent")

    def __init__(self, call: ProcessCall, retire: bool) -> None:
        self.call = call
        self.call_soon = threadsafe_caller()
        self.retire = retire  # the worker leaves after this attempt
        self.lock = threading.Lock()
        self.cancelled = self.sent = False
        self.active = True  # loop side: lines arriving after the attempt ended are dropped

    def deliver(self, frame: tuple[Any, ...]) -> None:
        if self.active:
            self.call.on_message(frame)


class _Waiter:
    __slots__ = ("call_soon", "event", "grant", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.call_soon = threadsafe_caller()
        self.granted = False
        self.grant: ProcessWorker | None = None  # once granted: a worker, or None: a slot to start one


class ProcessPool:
    """At most `max_workers` worker processes (see the module docstring); thread-safe."""

    def __init__(self, max_workers: int, max_tasks_per_worker: int | None) -> None:
        self.max_workers = max_workers
        self.max_tasks_per_worker = max_tasks_per_worker
        self._lock = threading.Lock()
        self._slots = 0  # workers alive or being started
        self._idle: list[ProcessWorker] = []
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._started = self._recycled = self._killed = self._crashed = 0

    def statistics(self) -> ProcessPoolStatistics:
        with self._lock:
            return ProcessPoolStatistics(
                self.max_workers, self.max_tasks_per_worker, self._slots, len(self._idle),
                len(self._waiters), self._started, self._recycled, self._killed, self._crashed,
            )  # fmt: skip

    async def run(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        info: tuple[str, str, int, dict[str, str], Any],
        on_message: Callable[[tuple[Any, ...]], None],
    ) -> Any:
        """Run one attempt in a worker (see `ProcessCall`); its return value, or its error raised here."""
        call = ProcessCall(func, args, kwargs, info, on_message)
        worker = await self._checkout()
        limit = self.max_tasks_per_worker
        job = _Job(call, retire=limit is not None and worker.runs + 1 >= limit)
        try:
            frame = await anyio.to_thread.run_sync(
                self._drive, worker, job, abandon_on_cancel=True, limiter=_thread_limiter()
            )
        except BaseException as exc:
            job.active = False
            with job.lock:
                job.cancelled = True
                sent = job.sent
            if not sent:  # never reached the worker (cancelled first, or the call did not pickle)
                self._release(worker)
                raise
            died = isinstance(exc, ProcessTaskError)
            with anyio.CancelScope(shield=True):  # the body must not outlive its attempt
                await anyio.to_thread.run_sync(lambda: worker.stop(kill=True), limiter=_thread_limiter())
            with self._lock:
                if died:
                    self._crashed += 1
                else:
                    self._killed += 1
            self._release(None)
            raise
        job.active = False
        worker.runs += 1
        if job.retire:
            with self._lock:
                self._recycled += 1  # (or stopped after a SystemExit in its body)
        self._release(None if job.retire else worker)
        return read_outcome(frame, call.info[1])

    def _drive(self, worker: ProcessWorker, job: _Job) -> tuple[Any, ...]:
        """In a thread: send the call, hand lines to the loop, return the final frame."""
        call = job.call
        payload = pickle.dumps((call.func, call.args, call.kwargs, call.info), _PROTOCOL)
        with job.lock:
            if job.cancelled:
                return ()
            job.sent = True
        try:
            worker.conn.send_bytes(payload)
            del payload
            while True:
                frame: tuple[Any, ...] = pickle.loads(worker.conn.recv_bytes())
                if frame[0] not in ("log", "checkpoint"):
                    break
                job.call_soon(functools.partial(job.deliver, frame))
        except (EOFError, OSError):
            if job.cancelled:
                return ()  # killed by its attempt, which no longer waits for us
            code = worker.stop(kill=True)
            raise ProcessTaskError(
                f"the worker process (pid {worker.pid}) running {call.info[1]} died (exit code {code})"
            ) from None
        if frame[-1] is True:  # the body raised SystemExit or the like: the worker stopped after it
            job.retire = True
        if job.retire:
            worker.stop(kill=False)
        return frame

    async def _checkout(self) -> ProcessWorker:
        """An idle worker, a new one while fewer than `max_workers` live, else the next one released."""
        waiter: _Waiter | None = None
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._slots < self.max_workers:
                self._slots += 1
            else:
                waiter = _Waiter()
                self._waiters.append(waiter)
        if waiter is not None:
            try:
                await waiter.event.wait()
            except BaseException:
                with self._lock:
                    if not waiter.granted:
                        self._waiters.remove(waiter)
                        raise
                self._release(waiter.grant)  # granted as we were cancelled: pass it on
                raise
            if waiter.grant is not None:
                return waiter.grant
        # A slot of our own: start a worker in it.
        try:
            return await anyio.to_thread.run_sync(self._start, limiter=_thread_limiter())
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: ProcessWorker | None) -> None:
        """Give back a worker (None: the slot of one that is gone) to the first waiter, or keep it."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.grant, waiter.granted = worker, True
                try:
                    waiter.call_soon(waiter.event.set)
                    return
                except RuntimeError:  # its event loop has ended
                    continue
            if worker is None:
                self._slots -= 1
            else:
                self._idle.append(worker)

    def _start(self) -> ProcessWorker:
        """In a thread: start a worker process and send it multiprocessing's preparation data."""
        ours, theirs = multiprocessing.connection.Pipe(duplex=True)
        try:
            popen = subprocess.Popen(
                [multiprocessing.spawn.get_executable(), "-c", _BOOTSTRAP, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        worker = ProcessWorker(popen, ours)
        with self._lock:
            self._started += 1
        with self._lock:
            if not _exit_hook:
                _exit_hook.append(atexit.register(_stop_all_pools) is not None)
            _pools.add(self)
        try:
            ours.send_bytes(pickle.dumps(_preparation(), _PROTOCOL))
        except BaseException:
            worker.stop(kill=True)
            raise
        return worker

    async def close(self) -> None:
        """Stop the idle workers (the end of the lifespan): busy ones end with their attempts."""
        await anyio.to_thread.run_sync(self.stop_idle, limiter=_thread_limiter())

    def stop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._slots -= len(idle)
        for worker in idle:
            worker.stop(kill=False)


def _preparation() -> dict[str, Any]:
    """What multiprocessing gives a spawned child, `authkey` as plain bytes (its own type refuses pickle
    outside multiprocessing's spawning)."""
    data = multiprocessing.spawn.get_preparation_data("taskflow-process")
    data["authkey"] = bytes(data["authkey"])
    return data


def _thread_limiter() -> anyio.CapacityLimiter:
    """The threads reading workers are capped by the pool (one per busy worker), not by anyio's default."""
    try:
        return _threads.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(math.inf)
        _threads.set(limiter)
        return limiter


def _stop_all_pools() -> None:
    """At the interpreter's exit: no idle worker outlives its parent."""
    for pool in list(_pools):
        pool.stop_idle()
