"""The dashboard stream's `metrics` payload (cards and charts), and how often it is worth recomputing.

The cards and charts are the `/tasks/metrics` figures (`manager.metrics()`), so the page and the API count
the same thing: the store's history, every instance included, when there is a store. `run` refreshes them
at most every `METRICS_INTERVAL` while something changed here, and every `SHARED_METRICS_INTERVAL` with a
store (other instances change it without telling this one), and only while someone watches; never more
often than ten times the last refresh took (a big history's summary is a scan, and the store's connection
has other work). Without a store-wide figure, the charts are this process's `ChartStats`.

Apart from the bus because its pace is its own: a store query must never hold task events back, so the
bus's flusher only marks the figures `changed()` and this runs beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio

from ._charts import ChartStats
from ._payloads import dumps, stream_metrics

METRICS_INTERVAL = 1.0
SHARED_METRICS_INTERVAL = 2.0  # with a store: how stale another instance's tasks may be on the cards
Manager = Any  # taskflow.web.TaskManager (not imported: only metrics/statistics/launcher are read)
_log = logging.getLogger("taskflow.dashboard")


class StreamMetrics:
    """The current payload as JSON (`json`) and its `version`, which goes up with each new payload."""

    def __init__(self, manager: Manager, charts: ChartStats) -> None:
        self._manager = manager
        self._charts = charts
        self._version = 0
        self._json = "{}"
        self._dirty = True
        self._at = -float("inf")  # time.monotonic() of the last refresh
        self._refreshing: anyio.Event | None = None
        self._cost = 0.0  # seconds the last refresh took

    @property
    def version(self) -> int:
        return self._version

    @property
    def json(self) -> str:
        return self._json

    def changed(self) -> None:
        """Something changed here: the figures are due at the next refresh."""
        self._dirty = True

    async def run(self, watched: Callable[[], bool], notify: Callable[[], None]) -> None:
        """Refresh when due while `watched()`, and `notify()` clients of a new payload; until cancelled."""
        while True:
            await anyio.sleep(METRICS_INTERVAL)
            if not watched():
                continue  # nobody watches; a new client's snapshot refreshes them first
            age = time.monotonic() - self._at
            interval = METRICS_INTERVAL if self._dirty else self._shared_interval
            shared = self._manager.launcher.is_persistent  # other instances change the store's figures
            due = (self._dirty or shared) and age >= max(interval, self._floor)
            if due:
                version = self._version
                await self.refresh()
                if self._version != version:
                    notify()

    async def refresh(self) -> None:
        """Recompute the payload from `manager.metrics()`; one query at a time."""
        running = self._refreshing
        if running is not None:
            await running.wait()  # a refresh started meanwhile: its figures are as fresh as ours would be
            return
        self._refreshing = done = anyio.Event()
        try:
            self._dirty = False  # before the query: a change during it makes the next refresh due
            try:
                began = time.monotonic()
                data = await self.compute()
                self._cost = time.monotonic() - began
            except Exception:  # the store is down: keep the last figures, the stream goes on
                self._dirty = True
                _log.warning("could not read the dashboard's metrics", exc_info=True)
                return
            self._set(data)
        finally:
            self._refreshing = None
            done.set()

    async def compute(self) -> dict[str, Any]:
        """The payload: the `/tasks/metrics` figures, shaped by `stream_metrics`."""
        return stream_metrics(await self._manager.metrics(), self._charts.to_dict(), time.time())

    async def fresh(self) -> None:
        """Refresh if due (called before a snapshot is sent, which may be a store query away)."""
        if not self._manager.launcher.is_persistent:
            return  # `for_snapshot` computes this process's figures itself
        if self._dirty or time.monotonic() - self._at >= self._shared_interval:
            await self.refresh()

    def for_snapshot(self, *, running: bool) -> None:
        """Bring the payload up to date for a snapshot, where that takes no query: without a store the
        figures are this process's, computed here at once."""
        stale = self._dirty or not running or not self._version
        if stale and not self._manager.launcher.is_persistent:
            self._dirty = False
            m = self._manager.statistics().to_metrics()
            self._set(stream_metrics(m, self._charts.to_dict(), time.time()))

    @property
    def _floor(self) -> float:
        # The store's summary scans every record: on a big history, refresh less often, so the store's
        # connection spends at most about a tenth of its time on the dashboard.
        return 10 * self._cost

    @property
    def _shared_interval(self) -> float:
        return max(SHARED_METRICS_INTERVAL, self._floor)

    def _set(self, data: dict[str, Any]) -> None:
        self._json = dumps(data)
        self._version += 1
        self._at = time.monotonic()
