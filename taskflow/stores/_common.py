"""Helpers every store shares: time normalisation, record copies, query argument checks, cursor positions.

Stores keep times as UTC text of one fixed shape ("2024-05-01T12:00:00.000000+00:00"), which sorts in time
order as plain strings, so SQL indexes and string comparisons order records correctly.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

from .._models import AttemptRecord, TaskRecord
from ._paging import InvalidCursor, decode_cursor


def utc_text(value: datetime) -> str:
    """Sortable UTC text for an aware datetime; naive values (old data) are taken as UTC."""
    if value.tzinfo is not UTC:  # the runtime's own times are already UTC: no conversion
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.microsecond:
        return value.isoformat()  # microseconds included; 40% faster than passing timespec
    return value.isoformat(timespec="microseconds")


def utc_text_or_none(value: datetime | None) -> str | None:
    """`utc_text`, passing None through."""
    return None if value is None else utc_text(value)


def parse_utc(text: str | None) -> datetime | None:
    """The aware datetime stored as `text` (None stays None)."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_new = object.__new__
_FIELDS = (
    "task_id", "func_name", "status", "args", "kwargs", "created_at", "start_time", "end_time",
    "retries_used", "error", "logs", "stacktrace", "idempotency_key", "tags", "encrypted_payload",
    "attempts", "status_reason", "trace_context", "checkpoint", "instance",
)  # fmt: skip
if tuple(f.name for f in dataclasses.fields(TaskRecord)) != _FIELDS:  # copy_record names every field
    raise RuntimeError("copy_record is out of date: TaskRecord's fields changed")


def copy_record(record: TaskRecord) -> TaskRecord:
    """A copy whose lists and dicts are not shared with `record` (args values themselves are shared).

    The writer snapshots records on the event loop thread so a store thread never reads a record while
    the runtime changes it. Each field is set by name on a bare instance: a third cheaper than calling the
    dataclass's `__init__` (with its default checks), which was cheaper than `dataclasses.replace`; a
    persisted task is copied three times (docs/benchmarks.md).
    """
    copy: TaskRecord = _new(TaskRecord)
    copy.task_id = record.task_id
    copy.func_name = record.func_name
    copy.status = record.status
    copy.args = record.args
    copy.kwargs = dict(record.kwargs)
    copy.created_at = record.created_at
    copy.start_time = record.start_time
    copy.end_time = record.end_time
    copy.retries_used = record.retries_used
    copy.error = record.error
    copy.logs = list(record.logs)
    copy.stacktrace = record.stacktrace
    copy.idempotency_key = record.idempotency_key
    copy.tags = dict(record.tags)
    copy.encrypted_payload = record.encrypted_payload
    copy.attempts = [AttemptRecord(a.number, a.start_time, a.end_time, a.error) for a in record.attempts]
    copy.status_reason = record.status_reason
    copy.trace_context = record.trace_context
    copy.checkpoint = record.checkpoint
    copy.instance = record.instance
    return copy


def check_limit(limit: int) -> None:
    """Reject a page size below 1 (or not an int) before touching storage."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")


def cursor_position(cursor: str) -> tuple[str, str]:
    """(created_at as sortable UTC text, task_id) of a cursor; `InvalidCursor` if it is not one of ours."""
    created, task_id = decode_cursor(cursor)
    parsed = parse_utc(created)
    if parsed is None:  # pragma: no cover - decode_cursor already checked the type
        raise InvalidCursor("invalid cursor")
    return utc_text(parsed), task_id


def check_ttl(ttl: float) -> None:
    """A heartbeat ttl must be a finite number of seconds, zero or more."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl < 0:
        raise ValueError(f"ttl must be a finite number of seconds >= 0, got {ttl!r}")
