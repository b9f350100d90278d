"""`StdoutLogger` (lines to standard output, off the loop) and `InMemoryLogger` (events kept in lists)."""

from __future__ import annotations

import sys

from ._base import TaskObserver
from ._events import LifecycleEvent, LogEvent
from ._lines import BufferedObserver, format_lifecycle, format_log

__all__ = ["InMemoryLogger", "StdoutLogger"]


class StdoutLogger(BufferedObserver[str]):
    """Prints `[id8] [func] <ts> message` and `... -- STATUS` lines; the writes happen in a worker thread."""

    def __init__(self, *, log_lifecycle: bool = True, min_level: str = "info") -> None:
        super().__init__(log_lifecycle=log_lifecycle, min_level=min_level)

    def _log_item(self, event: LogEvent) -> str:
        return format_log(event)

    def _lifecycle_item(self, event: LifecycleEvent) -> str:
        return format_lifecycle(event)

    def _write(self, items: list[str]) -> None:
        stream = sys.stdout  # looked up per batch, so redirection (and pytest's capsys) is honoured
        stream.write("\n".join(items) + "\n")
        stream.flush()


class InMemoryLogger(TaskObserver):
    """Keeps events in `log_events` and `lifecycle_events`, for tests and debugging.

    Log events are filtered by `min_level` (default debug); lifecycle events are always recorded.
    """

    def __init__(self, *, min_level: str = "debug") -> None:
        super().__init__(min_level=min_level)
        self.log_events: list[LogEvent] = []
        self.lifecycle_events: list[LifecycleEvent] = []

    async def on_log(self, event: LogEvent) -> None:
        if self._should_log(event.level):
            self.log_events.append(event)

    async def on_lifecycle(self, event: LifecycleEvent) -> None:
        self.lifecycle_events.append(event)

    def clear(self) -> None:
        """Forget every recorded event."""
        self.log_events.clear()
        self.lifecycle_events.clear()
