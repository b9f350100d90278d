"""Text lines for the built-in line observers, and the buffering that keeps their writes off the event loop.

Log line:        `[9f3c2b1a] [send_email] 2026-01-01T12:00:00Z message key=value`
Lifecycle line:  `[9f3c2b1a] [send_email] 2026-01-01T12:00:00Z -- FAILED error=boom`

`BufferedObserver` formats on the loop (cheap) and writes in a worker thread once per batch: the
dispatcher calls `flush()` after each batch, and a full buffer flushes on its own. The bracketed id is the
task's `short_id()` (the random end of its id, not the time-ordered start).
"""

from __future__ import annotations

import abc
import json
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import anyio.to_thread

from .._models import TaskStatus, short_id
from ._base import TaskObserver
from ._events import LifecycleEvent, LogEvent

Item = TypeVar("Item")

MAX_BUFFER = 1000  # lines held before on_log flushes by itself (bounds memory when driven by hand)


def timestamp(value: datetime) -> str:
    """`2026-01-01T12:00:00Z`; naive datetimes are taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    # logfmt-style quoting keeps `key=value` pairs parseable when a value has spaces or quotes.
    if not text or any(c in text for c in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_log(event: LogEvent) -> str:
    """The line for a log event, extras appended as `key=value`."""
    line = f"[{short_id(event.task_id)}] [{event.func_name}] {timestamp(event.timestamp)} {event.message}"
    if event.extra:
        line += "".join(f" {k}={_value(v)}" for k, v in event.extra.items())
    return line


def format_lifecycle(event: LifecycleEvent) -> str:
    """The line for a status change, with the error when the task failed."""
    status = event.status.value if isinstance(event.status, TaskStatus) else str(event.status)
    line = f"[{short_id(event.task_id)}] [{event.func_name}] {timestamp(event.timestamp)} -- {status.upper()}"
    if event.status == TaskStatus.FAILED and event.error is not None:
        line += f" error={event.error}"
    return line


class BufferedObserver(TaskObserver, Generic[Item], abc.ABC):
    """Buffers items on the loop and hands each batch to `_write()` in a worker thread."""

    def __init__(self, *, log_lifecycle: bool, min_level: str) -> None:
        super().__init__(min_level=min_level)
        self.log_lifecycle = log_lifecycle
        self._buffer: list[Item] = []

    @abc.abstractmethod
    def _log_item(self, event: LogEvent) -> Item:
        """The item for a log event (called on the loop: keep it cheap)."""

    @abc.abstractmethod
    def _lifecycle_item(self, event: LifecycleEvent) -> Item:
        """The item for a lifecycle event (called on the loop: keep it cheap)."""

    @abc.abstractmethod
    def _write(self, items: list[Item]) -> None:
        """Write a batch; runs in a worker thread, so blocking I/O is fine here."""

    async def on_log(self, event: LogEvent) -> None:
        if self._should_log(event.level):
            await self._add(self._log_item(event))

    async def on_lifecycle(self, event: LifecycleEvent) -> None:
        if self.log_lifecycle and self._should_log_lifecycle(event):
            await self._add(self._lifecycle_item(event))

    async def _add(self, item: Item) -> None:
        self._buffer.append(item)
        if len(self._buffer) >= MAX_BUFFER:
            await self.flush()

    async def flush(self) -> None:
        """Write everything buffered, in one worker-thread hop."""
        if self._buffer:
            # Swap before the hop: items added while the thread writes wait for the next flush.
            items, self._buffer = self._buffer, []
            await anyio.to_thread.run_sync(self._write, items)

    async def close(self) -> None:
        await self.flush()
