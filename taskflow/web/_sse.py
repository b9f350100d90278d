"""The change bus behind the dashboard's SSE stream: task changes in, small coalesced events out.

The bus is one of the runtime's listener sinks: it `take`s every batch of task changes, on the event loop
or, for log lines of sync tasks and submissions from sync routes, on a worker thread. That call only puts
the records in a dict keyed by task id under one lock for the batch (bursts coalesce: one entry per task)
and, if the flusher is idle, wakes it: directly on the loop thread, through the loop's thread-safe call
elsewhere. No anyio object is touched from a foreign thread.

The flusher (one task per bus, in the app's lifespan) runs at most every `FLUSH_INTERVAL` seconds: it turns
each changed record into one JSON event and keeps it in the ring (`_sse_ring`), then wakes the subscribers,
who read the ring from their own positions.

Other instances: with a store that has a change feed, the runtime hands the bus (`take_remote`, on the
event loop) the records that *other* instances sharing the store wrote. They are not this process's state
changes, so they bypass the lifecycle and this process's charts, and go out as task events that name their
`instance`.

Shutdown: the bus closes its streams when the lifespan ends, and on SIGINT/SIGTERM (`_stop_signals`: the
server would otherwise wait for the endless streams before it runs the lifespan shutdown).

Metrics: the `metrics` payload and its refresh pace are `_sse_metrics`'s; a second task of the bus runs it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .._eventloop import threadsafe_caller
from .._lifecycle import TaskChange
from .._models import TaskRecord
from ..stores import Page, StoredChange
from ._charts import ChartStats
from ._payloads import change_event, dumps, record_dict, sse
from ._sse_metrics import StreamMetrics
from ._sse_ring import EventRing, Subscription
from ._stop_signals import chain_stop_signals

FLUSH_INTERVAL = 0.1  # at most ~10 flushes a second, whatever the rate of changes
Manager = Any  # taskflow.web.TaskManager (not imported: the bus only needs query/metrics/listeners)


class ChangeBus:
    """Fans task changes out to the dashboard's stream clients."""

    def __init__(self, manager: Manager, *, display_func_args: bool = False, page_size: int = 50) -> None:
        self.manager = manager
        self.display_func_args = display_func_args
        self.page_size = page_size
        self.closed = False
        self.running = False
        self.charts = ChartStats()
        self._ring = EventRing()
        self._metrics = StreamMetrics(manager, self.charts)
        self._subscribers: set[Subscription] = set()
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

    @property
    def epoch(self) -> str:
        """This bus's part of every event id: ids of another process (or bus) never resume here."""
        return self._ring.epoch

    @property
    def seq(self) -> int:
        """The position of the last event published."""
        return self._ring.seq

    # -- producer side (any thread) --------------------------------------------------------------------

    def take(self, changes: Sequence[TaskChange]) -> None:
        """Note the changed records (any thread); the flusher turns them into events."""
        with self._lock:
            pending = self._pending
            for change in changes:
                pending[change.task_id] = change.record
            wake = self._claim_wake()
        if wake is not None:
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
            wake = self._claim_wake()
        if wake is not None:
            wake.set()

    def _claim_wake(self) -> anyio.Event | None:
        """The flusher's wake-up event, if it is running and nobody asked it to wake yet (lock held)."""
        if self._wake_requested or self._wake is None:
            return None
        self._wake_requested = True
        return self._wake

    def _watch_remote(self) -> Callable[[], None]:
        persistence = self.manager.actions.persistence
        return persistence.watch_remote(self.take_remote) if persistence is not None else lambda: None

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
            return
        self._call_on_loop_threadsafe(fn)

    def _call_on_loop_threadsafe(self, fn: Callable[[], None]) -> None:
        # Also from a signal handler: never runs loop code in place, even on the loop's own thread.
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
        restore = chain_stop_signals(lambda: self._call_on_loop_threadsafe(self.close))
        self.manager.listeners.add(self)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._flush_loop)
                tg.start_soon(self._metrics.run, lambda: bool(self._subscribers), self._notify_all)
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
        self._notify_all()

    def _notify_all(self) -> None:
        for sub in list(self._subscribers):
            sub.notify()

    # -- the flusher (event loop) ----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            wake = self._wake
            assert wake is not None
            await wake.wait()
            if self._publish_pending():
                self._notify_all()
            await anyio.sleep(FLUSH_INTERVAL)

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

    def _publish(self, records: Iterable[TaskRecord]) -> None:
        # This process's own changes: its charts observe them whether or not anyone watches.
        self._metrics.changed()
        kept = self._keeping_events()
        for record in records:
            if kept:
                self._ring.append(record.task_id, dumps(change_event(record)))
            self.charts.observe(record)

    def _publish_remote(self, changes: Iterable[StoredChange]) -> None:
        # Not observed by this process's charts: they are the store's figures whenever remote changes exist.
        self._metrics.changed()
        if not self._keeping_events():
            return
        for change in changes:
            event = {**change_event(change.record), "instance": change.instance}
            self._ring.append(change.record.task_id, dumps(event))

    def _keeping_events(self) -> bool:
        """Whether changes go into the ring as events: only while someone watches. Otherwise no JSON is built
        and the ring notes the gap: a client that reconnects later with an older Last-Event-ID gets a fresh
        snapshot instead."""
        if self._subscribers:
            return True
        self._ring.skip()
        return False

    # -- metrics (the payload is _sse_metrics's) -------------------------------------------------------

    async def refresh_metrics(self) -> None:
        """Recompute the metrics payload (cards and charts) from `manager.metrics()`; one query at a time."""
        await self._metrics.refresh()

    async def metrics(self) -> dict[str, Any]:
        """The stream's `metrics` payload: the `/tasks/metrics` figures, shaped by `stream_metrics`."""
        return await self._metrics.compute()

    async def fresh_metrics(self) -> None:
        """Refresh the metrics if they are due (called before a snapshot is sent)."""
        await self._metrics.fresh()

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
        return self._ring.event_id(seq)

    def resume_point(self, last_event_id: str | None) -> int | None:
        """The position to resume a client from, or None when it needs a fresh snapshot."""
        return self._ring.resume_point(last_event_id)

    def snapshot(self, sub: Subscription, page: Page | None = None, *, seq: int | None = None) -> str:
        """`event: state`: 0.5.0's keys `tasks` (the first page only) and `metrics`, then `next_cursor`.

        `page` is the first page when the caller fetched it (from the store); else the in-memory one. `seq`
        is `self.seq` from before that fetch began: the client goes on from there, so a change published
        while the page was on its way is sent after the snapshot (perhaps twice: the client keeps the last).
        """
        sub.seq = self.seq if seq is None else seq
        self._metrics.for_snapshot(running=self.running)
        sub.metrics_version = self._metrics.version
        if page is None:
            page = self.manager.query(limit=self.page_size)
        tasks = [record_dict(r, self.display_func_args) for r in page.records]
        # `next_cursor` (new) lets the page offer "older" without asking the API for the same page again.
        cursor = dumps(page.next_cursor)
        data = f'{{"tasks":{dumps(tasks)},"metrics":{self._metrics.json},"next_cursor":{cursor}}}'
        return sse("state", data, self.event_id(sub.seq))

    def drain(self, sub: Subscription) -> str:
        """What the client has not seen yet: coalesced task events and new metrics ("" when nothing)."""
        if self._ring.behind(sub.seq):
            return self.snapshot(sub)  # fell behind the ring
        latest = self._ring.latest_since(sub.seq)
        sub.seq = self.seq
        parts = [sse("task", payload, self.event_id(seq)) for seq, payload in latest]
        if sub.metrics_version != self._metrics.version:
            sub.metrics_version = self._metrics.version
            parts.append(sse("metrics", self._metrics.json))
        return "".join(parts)
