"""The change bus behind the dashboard's SSE stream: task changes in, small coalesced events out.

The bus is one of the runtime's listener sinks: it `take`s every batch of task changes, on the event loop
or, for log lines of sync tasks and submissions from sync routes, on a worker thread. That call only puts
the records in a dict keyed by task id under one lock for the batch (bursts coalesce: one entry per task)
and, if the flusher is idle, wakes it: directly on the loop thread, through the loop's thread-safe call
elsewhere. No anyio object is touched from a foreign thread.

The flusher (one task per bus, in the app's lifespan) runs at most every `FLUSH_INTERVAL` seconds: it turns
each changed record into one JSON event, numbers it and writes it to a fixed-size ring, then wakes the
subscribers. Each subscriber reads the ring from its own position and coalesces again (a slow client gets
one event per task), so a client's memory is bounded and a client that falls behind the ring, or resumes
with a `Last-Event-ID` it no longer holds, gets a fresh snapshot instead.

Other instances: with a store that has a change feed, the runtime hands the bus (`take_remote`, on the
event loop) the records that *other* instances sharing the store wrote. They are not this process's state
changes, so they bypass the lifecycle and this process's charts, and go out as task events that name their
`instance`.

Shutdown: uvicorn waits for open responses to finish before it runs the lifespan shutdown, so an endless
stream would hold it forever. The bus therefore also closes on SIGINT/SIGTERM (chained in front of the
server's own handlers, main thread only) as well as when the lifespan ends.

Metrics: the cards and charts are the `/tasks/metrics` figures (`manager.metrics()`), so the page and the
API count the same thing: the store's history, every instance included, when there is a store. A second
task refreshes them at most every `METRICS_INTERVAL` while something changed here, and every
`SHARED_METRICS_INTERVAL` with a store (other instances change it without telling this one), and only
while someone watches; never more often than ten times the last refresh took (a big history's summary is
a scan, and the store's connection has other work). Without a store-wide figure, the charts are this
process's `ChartStats`.
"""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import anyio

from .._eventloop import threadsafe_caller
from .._lifecycle import TaskChange
from .._models import TaskRecord
from ..stores import Page, StoredChange
from ._charts import ChartStats
from ._payloads import change_event, dumps, record_dict, sse, stream_metrics

FLUSH_INTERVAL = 0.1  # at most ~10 flushes a second, whatever the rate of changes
METRICS_INTERVAL = 1.0
SHARED_METRICS_INTERVAL = 2.0  # with a store: how stale another instance's tasks may be on the cards
RING_SIZE = 4096
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Manager = Any  # taskflow.web.TaskManager (not imported: the bus only needs query/metrics/listeners)
_log = logging.getLogger("taskflow.dashboard")


class Subscription:
    """One connected client: its position in the ring and a wake-up event."""

    def __init__(self) -> None:
        self.seq = 0
        self.metrics_version = -1
        self._event = anyio.Event()

    def notify(self) -> None:
        """Wake the client's stream (event loop thread only)."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait for news; False after `seconds` without any."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woke = self._event.is_set()
        self._event = anyio.Event()
        return woke


class ChangeBus:
    """Fans task changes out to the dashboard's stream clients."""

    def __init__(self, manager: Manager, *, display_func_args: bool = False, page_size: int = 50) -> None:
        self.manager = manager
        self.display_func_args = display_func_args
        self.page_size = page_size
        self.epoch = secrets.token_hex(4)  # event ids of another process (or bus) never resume here
        self.seq = 0
        self.closed = False
        self.running = False
        self.charts = ChartStats()
        self._ring: list[tuple[int, str, str] | None] = [None] * RING_SIZE
        self._subscribers: set[Subscription] = set()
        self._unpublished_after: int | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, TaskRecord] = {}
        self._pending_remote: dict[str, StoredChange] = {}  # event loop thread only
        # Registered now, before any lifespan: the manager's lifespan may start before the bus runs, and it
        # follows the store's change feed only if someone watches when it starts.
        self._unwatch_remote = self._watch_remote()
        self._wake: anyio.Event | None = None
        self._wake_requested = False
        self._loop_thread: int | None = None
        self._soon: Callable[[Callable[[], None]], object] | None = None
        self._metrics_version = 0
        self._metrics_json = "{}"
        self._metrics_dirty = True
        self._metrics_at = -float("inf")  # time.monotonic() of the last refresh
        self._refreshing: anyio.Event | None = None
        self._metrics_cost = 0.0  # seconds the last refresh took

    # -- producer side (any thread) --------------------------------------------------------------------

    def take(self, changes: Sequence[TaskChange]) -> None:
        """Note the changed records (any thread); the flusher turns them into events."""
        with self._lock:
            pending = self._pending
            for change in changes:
                pending[change.task_id] = change.record
            if self._wake_requested or self._wake is None:
                return
            self._wake_requested = True
            wake = self._wake
        self._call_on_loop(wake.set)

    def take_remote(self, changes: Sequence[StoredChange]) -> None:
        """Note records that *other* instances wrote (event loop thread: the store's change feed); they go
        out as task events with their `instance`, like this process's own changes."""
        if not self.running:
            return  # before the bus runs or after it stopped: nobody can be streamed these
        pending = self._pending_remote
        for change in changes:
            pending[change.record.task_id] = change
        with self._lock:
            if self._wake_requested or self._wake is None:
                return
            self._wake_requested = True
            wake = self._wake
        wake.set()

    def _watch_remote(self) -> Callable[[], None]:
        persistence = self.manager.actions.persistence
        return persistence.watch_remote(self.take_remote) if persistence is not None else lambda: None

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
            return
        soon = self._soon
        if soon is None:
            return
        try:
            soon(fn)
        except Exception:  # the loop is closed or closing: nobody is left to wake
            return

    # -- lifecycle -------------------------------------------------------------------------------------

    @asynccontextmanager
    async def run(self) -> AsyncIterator[ChangeBus]:
        """Deliver changes for the duration of the block (TaskAdmin runs it in the app's lifespan)."""
        if self.running or self.closed:
            raise RuntimeError("a ChangeBus runs once")
        self._loop_thread = threading.get_ident()
        self._soon = threadsafe_caller()
        self._wake = anyio.Event()
        restore = self._chain_signals()
        self.manager.listeners.add(self)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._flush_loop)
                tg.start_soon(self._metrics_loop)
                self.running = True
                try:
                    yield self
                finally:
                    self.close()
                    tg.cancel_scope.cancel()
        finally:
            self.running = False
            self.manager.listeners.discard(self)
            self._unwatch_remote()
            restore()
            self._soon = None

    def close(self) -> None:
        """End every stream now (event loop thread). New streams get a snapshot and end at once."""
        self.closed = True
        for sub in list(self._subscribers):
            sub.notify()

    def _chain_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        installed: list[tuple[signal.Signals, Any, Any]] = []
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # SIG_DFL / SIG_IGN / foreign: do not change what the signal does

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                self._call_on_loop_threadsafe(self.close)
                previous(signum, frame)

            signal.signal(sig, handler)
            installed.append((sig, previous, handler))

        def restore() -> None:
            for sig, previous, handler in installed:
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, previous)

        return restore

    def _call_on_loop_threadsafe(self, fn: Callable[[], None]) -> None:
        # From a signal handler: never run loop code in place, even on the loop's own thread.
        soon = self._soon
        if soon is not None:
            try:
                soon(fn)
            except Exception:  # the loop is already gone
                return

    # -- the flusher (event loop) ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            wake = self._wake
            assert wake is not None
            await wake.wait()
            if self._publish_pending():
                for sub in list(self._subscribers):
                    sub.notify()
            await anyio.sleep(FLUSH_INTERVAL)

    async def _metrics_loop(self) -> None:
        # Apart from the flusher: a store query must never hold task events back.
        while True:
            await anyio.sleep(METRICS_INTERVAL)
            if not self._subscribers:
                continue  # nobody watches; a new client's snapshot refreshes them first
            age = time.monotonic() - self._metrics_at
            interval = METRICS_INTERVAL if self._metrics_dirty else self._shared_interval
            shared = self.manager.launcher.is_persistent  # other instances change the store's figures
            due = (self._metrics_dirty or shared) and age >= max(interval, self._floor)
            if due:
                version = self._metrics_version
                await self.refresh_metrics()
                if self._metrics_version != version:
                    for sub in list(self._subscribers):
                        sub.notify()

    def _publish_pending(self) -> bool:
        """Publish the changes gathered since the last flush; True if there were any. (A method of its own so
        the flush loop keeps no reference to them while it sleeps: they can be thousands of records that the
        task table has already let go of.)"""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._wake_requested = False
            self._wake = anyio.Event()
        self._publish(pending.values())
        remote, self._pending_remote = self._pending_remote, {}
        self._publish_remote(remote.values())
        return bool(pending) or bool(remote)

    def _publish(self, records: Any) -> None:
        if not self._subscribers:
            # Nobody is watching: keep the charts current but skip building events nobody reads. A client
            # that reconnects later with an older Last-Event-ID gets a fresh snapshot instead.
            for record in records:
                self.charts.observe(record)
            self._metrics_dirty = True
            self._unpublished_after = self.seq
            return
        ring = self._ring
        for record in records:
            self.seq += 1
            ring[self.seq % RING_SIZE] = (self.seq, record.task_id, dumps(change_event(record)))
            self.charts.observe(record)
            self._metrics_dirty = True

    def _publish_remote(self, changes: Any) -> None:
        # Not observed by this process's charts: they are the store's figures whenever remote changes exist.
        self._metrics_dirty = True
        if not self._subscribers:
            self._unpublished_after = self.seq
            return
        ring = self._ring
        for change in changes:
            self.seq += 1
            event = {**change_event(change.record), "instance": change.instance}
            ring[self.seq % RING_SIZE] = (self.seq, change.record.task_id, dumps(event))

    async def refresh_metrics(self) -> None:
        """Recompute the metrics payload (cards and charts) from `manager.metrics()`; one query at a time."""
        running = self._refreshing
        if running is not None:
            await running.wait()  # a refresh started meanwhile: its figures are as fresh as ours would be
            return
        self._refreshing = done = anyio.Event()
        try:
            self._metrics_dirty = False  # before the query: a change during it makes the next refresh due
            try:
                began = time.monotonic()
                data = await self.metrics()
                self._metrics_cost = time.monotonic() - began
            except Exception:  # the store is down: keep the last figures, the stream goes on
                self._metrics_dirty = True
                _log.warning("could not read the dashboard's metrics", exc_info=True)
                return
            self._set_metrics(data)
        finally:
            self._refreshing = None
            done.set()

    @property
    def _floor(self) -> float:
        # The store's summary scans every record: on a big history, refresh less often, so the store's
        # connection spends at most about a tenth of its time on the dashboard.
        return 10 * self._metrics_cost

    @property
    def _shared_interval(self) -> float:
        return max(SHARED_METRICS_INTERVAL, self._floor)

    def _set_metrics(self, data: dict[str, Any]) -> None:
        self._metrics_json = dumps(data)
        self._metrics_version += 1
        self._metrics_at = time.monotonic()

    async def metrics(self) -> dict[str, Any]:
        """The stream's `metrics` payload: the `/tasks/metrics` figures, shaped by `stream_metrics`."""
        return stream_metrics(await self.manager.metrics(), self.charts.to_dict(), time.time())

    async def fresh_metrics(self) -> None:
        """Refresh the metrics if they are due (called before a snapshot is sent)."""
        if not self.manager.launcher.is_persistent:
            return  # `snapshot` computes this process's figures itself
        if self._metrics_dirty or time.monotonic() - self._metrics_at >= self._shared_interval:
            await self.refresh_metrics()

    # -- consumer side (event loop) --------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """Register a client (remember to `unsubscribe`)."""
        sub = Subscription()
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a client."""
        self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        """How many clients are connected."""
        return len(self._subscribers)

    def event_id(self, seq: int) -> str:
        """The SSE id of position `seq` in this bus."""
        return f"{self.epoch}-{seq}"

    def resume_point(self, last_event_id: str | None) -> int | None:
        """The position to resume a client from, or None when it needs a fresh snapshot."""
        if not last_event_id:
            return None
        epoch, _, number = last_event_id.partition("-")
        if epoch != self.epoch or not number.isdigit() or len(number) > 18:
            return None
        seq = int(number)
        if seq > self.seq or self.seq - seq >= RING_SIZE:
            return None
        if self._unpublished_after is not None and seq <= self._unpublished_after:
            return None  # changes after it were not kept in the ring (nobody was subscribed)
        return seq

    def snapshot(self, sub: Subscription, page: Page | None = None, *, seq: int | None = None) -> str:
        """`event: state`: 0.5.0's keys `tasks` (the first page only) and `metrics`, then `next_cursor`.

        `page` is the first page when the caller fetched it (from the store); else the in-memory one. `seq`
        is `self.seq` from before that fetch began: the client goes on from there, so a change published
        while the page was on its way is sent after the snapshot (perhaps twice: the client keeps the last).
        """
        sub.seq = self.seq if seq is None else seq
        stale = self._metrics_dirty or not self.running or not self._metrics_version
        if stale and not self.manager.launcher.is_persistent:
            # Without a store the figures are this process's, computed here at once (no query to wait for).
            self._metrics_dirty = False
            m = self.manager.statistics().to_metrics()
            self._set_metrics(stream_metrics(m, self.charts.to_dict(), time.time()))
        sub.metrics_version = self._metrics_version
        if page is None:
            page = self.manager.query(limit=self.page_size)
        tasks = [record_dict(r, self.display_func_args) for r in page.records]
        # `next_cursor` (new) lets the page offer "older" without asking the API for the same page again.
        cursor = dumps(page.next_cursor)
        data = f'{{"tasks":{dumps(tasks)},"metrics":{self._metrics_json},"next_cursor":{cursor}}}'
        return sse("state", data, self.event_id(sub.seq))

    def drain(self, sub: Subscription) -> str:
        """What the client has not seen yet: coalesced task events and new metrics ("" when nothing)."""
        if self.seq - sub.seq >= RING_SIZE:
            return self.snapshot(sub)  # fell behind the ring
        latest: dict[str, tuple[int, str]] = {}
        ring = self._ring
        for seq in range(sub.seq + 1, self.seq + 1):
            entry = ring[seq % RING_SIZE]
            assert entry is not None  # positions within RING_SIZE of the head are always filled
            latest.pop(entry[1], None)  # re-insert, so events go out in order of their latest change
            latest[entry[1]] = (seq, entry[2])
        sub.seq = self.seq
        parts = [sse("task", payload, self.event_id(seq)) for seq, payload in latest.values()]
        if sub.metrics_version != self._metrics_version:
            sub.metrics_version = self._metrics_version
            parts.append(sse("metrics", self._metrics_json))
        return "".join(parts)
