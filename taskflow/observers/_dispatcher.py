"""`ObserverDispatcher`: gets events from tasks to observers without ever making a task wait for one.

Tasks call `emit_log()` / `emit_lifecycle()` (from the event loop or from worker threads): that appends to
a thread-safe deque and returns. `run()` moves queued events into one ordered log; each observer has its
own lane (a position in that log, and a task that delivers from it), so a slow observer falls behind
alone while the others keep up. After each batch a lane calls the observer's `flush()`. Events that every
lane has passed are trimmed; past `max_queue` the oldest are dropped (counted, warned about once).

    emit_*() --deque--> pump --log--> lane(observer 1) --on_log/on_lifecycle, flush-->
                                  \\-> lane(observer 2) --...
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.lowlevel

from ._base import TaskObserver
from ._events import LifecycleEvent, LogEvent

__all__ = ["ObserverDispatcher", "ObserverStatistics"]

log = logging.getLogger("taskflow.observers")

POLL_INTERVAL = 0.1  # how late a worker thread's event may be picked up (they cannot wake the loop)
SHUTDOWN_TIMEOUT = 2.0  # bound on the final delivery, then again on closing observers
CHECKPOINT_EVERY = 256  # a lane yields this often, so a backlog for a no-await observer cannot hog the loop

Event = LogEvent | LifecycleEvent


@dataclass(frozen=True, slots=True)
class ObserverStatistics:
    """A snapshot of the dispatcher.

    `queued`: events not yet delivered to every observer. `delivered`: events every observer has been
    given (a raising observer still counts as given). `dropped`: events discarded because more than
    `max_queue` were waiting. `errors`: exceptions raised by observer hooks.
    """

    queued: int
    delivered: int
    dropped: int
    errors: int


class _Lane:
    """One observer's delivery state: `pos` is the sequence number of the next event it gets."""

    __slots__ = ("busy", "observer", "pos", "wake")

    def __init__(self, observer: TaskObserver) -> None:
        self.observer = observer
        self.pos = 0
        self.busy = False
        self.wake: anyio.Event | None = None


class ObserverDispatcher:
    """Delivers task events to observers in order, in batches, off the tasks' path."""

    def __init__(self, observers: Sequence[TaskObserver], *, max_queue: int = 100_000) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1; got {max_queue!r}")
        self.observers = tuple(observers)
        self.active = bool(self.observers)
        self._max_queue = max_queue
        self._lanes = [_Lane(o) for o in self.observers]
        self._inbox: collections.deque[Event] = collections.deque()  # any thread appends; the loop pops
        self._log: list[Event] = []  # loop only; _log[0] has sequence number _base
        self._base = 0
        self._running = False
        self._loop_thread: int | None = None
        self._wake: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        self._inbox_dropped = 0
        self._log_dropped = 0
        self._errors = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"ObserverDispatcher({list(self.observers)!r}, max_queue={self._max_queue})"

    # ---- the hot path: any thread, never blocks, never raises ----------------------------------------

    def emit_log(self, event: LogEvent) -> None:
        """Queue a log event for every observer."""
        self._emit(event)

    def emit_lifecycle(self, event: LifecycleEvent) -> None:
        """Queue a status change for every observer."""
        self._emit(event)

    def _emit(self, event: Event) -> None:
        if not self.active:
            return
        try:
            inbox = self._inbox
            inbox.append(event)
            if len(inbox) > self._max_queue:
                self._overflow()
            wake = self._wake
            # Only the loop thread may touch an anyio.Event; other threads rely on the pump's polling.
            if wake is not None and threading.get_ident() == self._loop_thread and not wake.is_set():
                wake.set()
        except Exception:  # an observer problem must never become the task's problem
            log.exception("could not queue an observer event")

    def _overflow(self) -> None:
        try:
            self._inbox.popleft()
        except IndexError:  # another thread or the pump emptied it meanwhile
            return
        self._inbox_dropped += 1
        self._warn()

    def _warn(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "more than %d observer events are waiting; dropping the oldest (is an observer stuck, "
                "or is nothing running the dispatcher?)",
                self._max_queue,
            )

    # ---- loop side ---------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Move emitted events into the log and wake the lanes."""
        inbox, events = self._inbox, self._log
        moved = len(inbox)
        for _ in range(moved):
            events.append(inbox.popleft())
        if len(events) > self._max_queue:
            self._trim()
            excess = len(events) - self._max_queue
            if excess > 0:
                del events[:excess]
                self._base += excess
                self._log_dropped += excess
                for lane in self._lanes:
                    lane.pos = max(lane.pos, self._base)
                self._warn()
        if moved:
            for lane in self._lanes:
                if lane.wake is not None:
                    lane.wake.set()

    def _trim(self) -> None:
        """Forget events every lane has passed (so whatever is left is undelivered somewhere)."""
        low = min(lane.pos for lane in self._lanes)
        if low > self._base:
            del self._log[: low - self._base]
            self._base = low

    async def _call(self, observer: TaskObserver, hook: str, event: Event | None = None) -> None:
        try:
            if event is None:
                await getattr(observer, hook)()
            elif isinstance(event, LogEvent):
                await observer.on_log(event)
            else:
                await observer.on_lifecycle(event)
        except Exception:
            self._errors += 1
            if event is not None:
                hook = "on_log" if isinstance(event, LogEvent) else "on_lifecycle"
            log.exception("observer %r failed in %s", observer, hook)

    async def _deliver(self, lane: _Lane) -> None:
        """Give the lane's observer everything logged so far (and what arrives meanwhile), then flush."""
        if lane.busy:  # someone else is delivering to this observer; order matters, so do not overlap
            return
        lane.busy = True
        try:
            # Until caught up: a batch, then flush (events that arrive during the flush make a new batch).
            while lane.pos - self._base < len(self._log):
                count = 0
                while lane.pos - self._base < len(self._log):
                    event = self._log[lane.pos - self._base]
                    lane.pos += 1  # before the await: an event interrupted by cancellation is not resent
                    await self._call(lane.observer, "on_event", event)
                    count += 1
                    if count % CHECKPOINT_EVERY == 0:
                        await anyio.lowlevel.checkpoint()
                await self._call(lane.observer, "flush")
        finally:
            lane.busy = False
            self._trim()
            if self._progress is not None:
                self._progress.set()
                self._progress = None

    async def _deliver_all(self) -> None:
        self._pump()
        async with anyio.create_task_group() as tg:
            for lane in self._lanes:
                tg.start_soon(self._deliver, lane)

    async def _lane_worker(self, lane: _Lane) -> None:
        while True:
            lane.wake = anyio.Event()  # before delivering: the pump sets it if more arrives meanwhile
            await self._deliver(lane)
            await lane.wake.wait()

    async def _pump_worker(self) -> None:
        while True:
            self._pump()
            if self._wake is None or self._wake.is_set():
                self._wake = anyio.Event()
            with anyio.move_on_after(POLL_INTERVAL):
                await self._wake.wait()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the observers, then deliver events until cancelled; then deliver the rest and close them.

        Meant for the runtime's task group: `await tg.start(dispatcher.run)`.
        """
        if self._running:
            raise RuntimeError("ObserverDispatcher.run() is already running")
        if not self.active:
            task_status.started()
            await anyio.sleep_forever()
            return
        self._running = True
        self._loop_thread = threading.get_ident()
        try:
            for lane in self._lanes:
                await self._call(lane.observer, "startup")
            async with anyio.create_task_group() as tg:
                for lane in self._lanes:
                    tg.start_soon(self._lane_worker, lane)
                task_status.started()
                await self._pump_worker()
        finally:
            self._running = False
            self._loop_thread = self._wake = None
            for lane in self._lanes:
                lane.wake = None
            # Shutdown drains, then closes; each step shielded but bounded, so a stuck observer cannot
            # hold the app's shutdown for more than a few seconds.
            with anyio.move_on_after(SHUTDOWN_TIMEOUT, shield=True):
                await self._deliver_all()
                while self._inbox:  # emitted meanwhile, e.g. by tasks reporting their cancellation
                    await self._deliver_all()
            with anyio.move_on_after(SHUTDOWN_TIMEOUT, shield=True):
                async with anyio.create_task_group() as tg:
                    for lane in self._lanes:
                        tg.start_soon(self._call, lane.observer, "close")
            if self._progress is not None:  # a drain() still waiting takes over delivery itself
                self._progress.set()
                self._progress = None

    async def drain(self) -> None:
        """Deliver everything emitted so far, now; waits for a slow observer to take it."""
        if not self.active:
            return
        self._pump()
        target = self._base + len(self._log)
        while True:
            if not self._running:
                await self._deliver_all()  # skips lanes another drain() is delivering to
            if all(lane.pos >= target for lane in self._lanes):
                return
            if self._progress is None:
                self._progress = anyio.Event()
            await self._progress.wait()

    def statistics(self) -> ObserverStatistics:
        """A frozen snapshot of the counters (see `ObserverStatistics`)."""
        if not self._lanes:
            return ObserverStatistics(queued=0, delivered=0, dropped=0, errors=self._errors)
        low = min(lane.pos for lane in self._lanes)
        return ObserverStatistics(
            queued=len(self._inbox) + self._base + len(self._log) - low,
            delivered=low - self._log_dropped,
            dropped=self._inbox_dropped + self._log_dropped,
            errors=self._errors,
        )
