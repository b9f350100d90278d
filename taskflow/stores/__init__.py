"""Durable task storage: the `TaskStore` protocol, the memory, SQLite and Redis stores, and the batch writer.

This package imports only the standard library, anyio and taskflow's data modules (records, codec,
encryption, exceptions), never the runtime or the live table; optional clients are imported lazily by the
store that needs them. Paging (`Page`, the cursor format, `InvalidCursor`) lives here, next to the protocol.
"""

from ._access import AuditEntry as AuditEntry
from ._access import AuditStore as AuditStore
from ._access import SessionStatus as SessionStatus
from ._access import SessionStore as SessionStore
from ._memory import MemoryStore as MemoryStore
from ._memory_access import MemoryAccess as MemoryAccess
from ._memory_schedules import MemorySchedules as MemorySchedules
from ._paging import RELEASES_KEY as RELEASES_KEY
from ._paging import InvalidCursor as InvalidCursor
from ._paging import Page as Page
from ._paging import decode_cursor as decode_cursor
from ._paging import encode_cursor as encode_cursor
from ._protocol import ChangeFeedStore as ChangeFeedStore
from ._protocol import FinishedRun as FinishedRun
from ._protocol import KeyFeedStore as KeyFeedStore
from ._protocol import RecoveredTask as RecoveredTask
from ._protocol import StoredChange as StoredChange
from ._protocol import StoreSummary as StoreSummary
from ._protocol import SummarizingStore as SummarizingStore
from ._protocol import TaskStore as TaskStore
from ._redis import RedisStore as RedisStore
from ._schedule_protocol import AdoptedRun as AdoptedRun
from ._schedule_protocol import ClaimOutcome as ClaimOutcome
from ._schedule_protocol import OneOffEntry as OneOffEntry
from ._schedule_protocol import ScheduleState as ScheduleState
from ._schedule_protocol import ScheduleStore as ScheduleStore
from ._sqlite import SqliteStore as SqliteStore
from ._writer import BatchWriter as BatchWriter
from ._writer import WriterStatistics as WriterStatistics
from ._writer import backoff_delay as backoff_delay

__all__ = [
    "AdoptedRun",
    "AuditEntry",
    "AuditStore",
    "BatchWriter",
    "ChangeFeedStore",
    "ClaimOutcome",
    "FinishedRun",
    "InvalidCursor",
    "KeyFeedStore",
    "MemoryAccess",
    "MemorySchedules",
    "MemoryStore",
    "OneOffEntry",
    "Page",
    "RELEASES_KEY",
    "RecoveredTask",
    "RedisStore",
    "ScheduleState",
    "ScheduleStore",
    "SessionStatus",
    "SessionStore",
    "SqliteStore",
    "StoreSummary",
    "StoredChange",
    "SummarizingStore",
    "TaskStore",
    "WriterStatistics",
    "backoff_delay",
    "decode_cursor",
    "encode_cursor",
]
