"""Paging of task listings, shared by the live table and every store: `Page`, and the opaque cursor.

A cursor points just after a record in newest-first (created_at, task_id) order. It is the same for the
in-memory table and for every store, so a client can page through either with the same cursor format.
Also here: `RELEASES_KEY`, the states in which a task no longer holds its idempotency key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from .._models import TaskRecord, TaskStatus

MAX_CURSOR_LENGTH = 512


class InvalidCursor(ValueError):
    """Raised by `query` for a cursor it did not issue (the HTTP API turns it into a 400)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of records, newest first, and the cursor of the next page (None on the last one)."""

    records: list[TaskRecord]
    next_cursor: str | None


RELEASES_KEY = frozenset(
    {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.INTERRUPTED, TaskStatus.REJECTED}
)
"""States in which a task no longer holds its idempotency key: resubmitting runs the work again."""


def encode_cursor(record: TaskRecord) -> str:
    """An opaque cursor pointing just after `record` in newest-first order."""
    raw = json.dumps(
        [record.created_at.isoformat(timespec="microseconds"), record.task_id], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The position a cursor points at; InvalidCursor for anything `encode_cursor` did not make."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, task_id = json.loads(raw)
        datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor("invalid cursor") from None
    if not isinstance(created, str) or not isinstance(task_id, str):
        raise InvalidCursor("invalid cursor")
    return (created, task_id)
