"""Durable task storage: the `TaskStore` protocol, the memory and SQLite stores, and the batch writer.

This package imports only the standard library, anyio and taskflow's data modules (records, codec,
exceptions, the cursor format); optional clients are imported lazily by the store that needs them.
"""

from ._memory import MemoryStore as MemoryStore
from ._protocol import RecoveredTask as RecoveredTask
from ._protocol import TaskStore as TaskStore
from ._sqlite import SqliteStore as SqliteStore
from ._writer import BatchWriter as BatchWriter
from ._writer import WriterStatistics as WriterStatistics
from ._writer import backoff_delay as backoff_delay

__all__ = [
    "BatchWriter",
    "MemoryStore",
    "RecoveredTask",
    "SqliteStore",
    "TaskStore",
    "WriterStatistics",
    "backoff_delay",
]
