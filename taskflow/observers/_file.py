"""`FileLogger`: task log lines to a file, rotated by size or reopened after logrotate.

Lines go through a per-path stdlib logger, `taskflow.observers.file.<absolute path>` (propagate=False,
record level = the line's level), so you can attach handlers of your own. Opening, writing, rotating and
closing the file all happen in a worker thread, once per batch, never on the event loop.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from typing import Literal

import anyio.to_thread

from ._base import LEVELS, lifecycle_level
from ._events import LifecycleEvent, LogEvent
from ._lines import BufferedObserver, format_lifecycle, format_log

__all__ = ["FileLogger"]


class FileLogger(BufferedObserver[tuple[int, str]]):
    """Writes `[id8] [func] <ts> message` lines (and `-- STATUS` lines when `log_lifecycle`) to `path`.

    `mode="rotate"` rolls the file over at `max_bytes`, keeping `backup_count` old files (one process per
    file); `mode="watched"` reopens the file when an external tool such as logrotate moves it (safe with
    several processes). Parent directories are created on the first write.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 10 * 1024 * 1024,
        backup_count: int = 5,
        mode: Literal["rotate", "watched"] = "rotate",
        log_lifecycle: bool = False,
        min_level: str = "info",
    ) -> None:
        super().__init__(log_lifecycle=log_lifecycle, min_level=min_level)
        if mode not in ("rotate", "watched"):
            raise ValueError(f"mode must be 'rotate' or 'watched'; got {mode!r}")
        if max_bytes < 0 or backup_count < 0:
            raise ValueError("max_bytes and backup_count must not be negative")
        self.path = os.path.abspath(os.fspath(path))
        self.mode = mode
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self._logger = logging.getLogger(f"taskflow.observers.file.{self.path}")
        self._logger.propagate = False
        self._logger.setLevel(logging.DEBUG)  # filtering is min_level's job, already done
        self._handler: logging.Handler | None = None
        self._owns_handler = False

    def __repr__(self) -> str:
        return f"FileLogger({self.path!r}, mode={self.mode!r}, min_level={self.min_level!r})"

    def _log_item(self, event: LogEvent) -> tuple[int, str]:
        return LEVELS.get(event.level, logging.INFO), format_log(event)

    def _lifecycle_item(self, event: LifecycleEvent) -> tuple[int, str]:
        return LEVELS[lifecycle_level(event)], format_lifecycle(event)

    def _open(self) -> logging.Handler:
        # A second FileLogger on the same path (an app built twice in one process) shares the handler
        # instead of writing every line twice.
        for existing in self._logger.handlers:
            if getattr(existing, "baseFilename", None) == self.path:
                return existing
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handler: logging.Handler
        if self.mode == "rotate":
            handler = logging.handlers.RotatingFileHandler(
                self.path, maxBytes=self.max_bytes, backupCount=self.backup_count, encoding="utf-8"
            )
        else:
            handler = logging.handlers.WatchedFileHandler(self.path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(handler)
        self._owns_handler = True
        return handler

    def _write(self, items: list[tuple[int, str]]) -> None:
        if self._handler is None:
            self._handler = self._open()
        for level, line in items:
            self._logger.log(level, line)

    def _close_handler(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None and self._owns_handler:
            self._logger.removeHandler(handler)
            handler.close()
            self._owns_handler = False

    async def close(self) -> None:
        """Write what is buffered, then close the file (in a worker thread)."""
        await self.flush()
        await anyio.to_thread.run_sync(self._close_handler)
